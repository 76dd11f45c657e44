/**
 * {@link Delivery} over AWS IoT Core's data-plane `Publish`: a room's chat and presence frames reach an MQTT
 * member on their own topic `rt/users/{sub}/rooms/{room}` (design: docs/design/mqtt-channel.md, option 1),
 * and request answers on `rt/users/{sub}/responses`. Retries are ours, as in `ConnectionsDelivery` (the
 * client is built with `maxAttempts: 1`): throttling and 5xx are retried with full-jitter backoff.
 *
 * IoT never reports a subscriber gone (a publish succeeds with or without subscribers), so this delivery
 * never answers `gone`: MQTT subscriptions are cleaned up by the `disconnected` lifecycle event instead.
 */
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { LIMITS, type ServerFrame, topics } from '@viba-realtime/protocol';
import { fullJitterDelay } from '../core/concurrency.js';
import type { Delivery, DeliveryOutcome, DeliveryTarget } from '../core/ports.js';
import type { Logger } from '../log.js';
import { isRetryable } from './connections-delivery.js';

const encoder = new TextEncoder();

/** Options of {@link IotDelivery}. */
export interface IotDeliveryOptions {
  /** The account's IoT data endpoint, `https://{prefix}-ats.iot.{region}.amazonaws.com`, or the emulator's
   * `http://127.0.0.1:4000` (`VIBA_IOT_ENDPOINT`). */
  endpoint: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  log: Logger;
  /** @default LIMITS.deliveryMaxAttempts */
  maxAttempts?: number;
  /** Injected so tests need not wait for real backoff. @default setTimeout-based sleep */
  sleep?: (ms: number) => Promise<void>;
}

/** Frames that belong to a room's traffic, the only ones a member's room topic carries. */
function roomOf(frame: ServerFrame): string | undefined {
  return frame.type === 'chat' || frame.type === 'presence' ? frame.room : undefined;
}

export class IotDelivery implements Delivery {
  readonly client: IoTDataPlaneClient;
  readonly #log: Logger;
  readonly #maxAttempts: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: IotDeliveryOptions) {
    this.client = new IoTDataPlaneClient({
      endpoint: options.endpoint,
      region: options.region,
      maxAttempts: 1,
      // One resolved middleware stack for every publish, not one per call (see bench/delivery-cost.ts).
      cacheMiddleware: true,
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    this.#log = options.log;
    this.#maxAttempts = options.maxAttempts ?? LIMITS.deliveryMaxAttempts;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Publishes a chat or presence frame to the target user's room topic; other frames have no room topic. */
  async post(target: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    const room = roomOf(frame);
    if (room === undefined) {
      this.#log.warn('no MQTT room topic for this frame', { connectionId: target.connectionId, type: frame.type });
      return 'failed';
    }
    return this.publish(topics.userRoom(target.sub, room), frame);
  }

  /** Publishes a frame to a topic at QoS 1 (IoT's highest), retrying throttling and server errors. */
  async publish(topic: string, frame: ServerFrame): Promise<DeliveryOutcome> {
    const payload = encoder.encode(JSON.stringify(frame));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(new PublishCommand({ topic, qos: 1, payload }));
        return 'delivered';
      } catch (error) {
        if (!isRetryable(error) || attempt + 1 >= this.#maxAttempts) {
          this.#log.warn('IoT publish failed', { topic, attempts: attempt + 1, error });
          return 'failed';
        }
        await this.#sleep(fullJitterDelay(attempt, LIMITS.deliveryBackoffBaseMs, LIMITS.deliveryBackoffMaxMs));
      }
    }
  }

  /** IoT's data plane cannot close a client's connection; the authorizer's `disconnectAfterInSeconds` does. */
  async close(connectionId: string): Promise<void> {
    this.#log.debug('closing an MQTT connection is not possible from the data plane', { connectionId });
  }
}
