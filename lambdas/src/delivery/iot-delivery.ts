/**
 * {@link Delivery} over AWS IoT Core's data-plane `Publish`: a room's chat and presence frames reach an MQTT
 * member on their own topic `rt/users/{sub}/rooms/{room}` (design: docs/design/mqtt-channel.md, option 1),
 * and request answers on `rt/users/{sub}/responses`, under the shared retry policy (./retry.ts).
 *
 * IoT never reports a subscriber gone (a publish succeeds with or without subscribers), so this delivery
 * never answers `gone`: MQTT subscriptions are cleaned up by the `disconnected` lifecycle event instead.
 */
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { type ServerFrame, topics } from '@viba-realtime/protocol';
import type { Delivery, DeliveryOutcome, DeliveryTarget } from '../core/ports.js';
import type { Logger } from '../log.js';
import { type DeliveryClientOptions, DeliveryRetrier, deliveryClientConfig } from './retry.js';

const encoder = new TextEncoder();

/** Options of {@link IotDelivery}; `endpoint` is the account's IoT data endpoint,
 * `https://{prefix}-ats.iot.{region}.amazonaws.com`, or the emulator's `http://127.0.0.1:4000`
 * (`VIBA_IOT_ENDPOINT`). */
export type IotDeliveryOptions = DeliveryClientOptions;

/** Frames that belong to a room's traffic, the only ones a member's room topic carries. */
function roomOf(frame: ServerFrame): string | undefined {
  return frame.type === 'chat' || frame.type === 'presence' ? frame.room : undefined;
}

const neverGone = () => false;

export class IotDelivery implements Delivery {
  readonly client: IoTDataPlaneClient;
  readonly #log: Logger;
  readonly #retrier: DeliveryRetrier;

  constructor(options: IotDeliveryOptions) {
    this.client = new IoTDataPlaneClient(deliveryClientConfig(options));
    this.#log = options.log;
    this.#retrier = new DeliveryRetrier(options);
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

  /**
   * Publishes a frame to a topic at QoS 1 (IoT's highest), retrying throttling and server errors.
   * `correlationData` (base64, as IoT's rules hand it over) is set as the MQTT 5 correlation data, so an MQTT 5
   * requester can match the answer to its request; MQTT 3.1.1 subscribers receive the payload alone.
   */
  publish(topic: string, frame: ServerFrame, options: { correlationData?: string } = {}): Promise<DeliveryOutcome> {
    const payload = encoder.encode(JSON.stringify(frame));
    const command = new PublishCommand({
      topic,
      qos: 1,
      payload,
      contentType: 'application/json',
      payloadFormatIndicator: 'UTF8_DATA',
      ...(options.correlationData === undefined ? {} : { correlationData: options.correlationData }),
    });
    return this.#retrier.run(() => this.client.send(command), neverGone, { topic });
  }

  /** IoT's data plane cannot close a client's connection; the authorizer's `disconnectAfterInSeconds` does. */
  async close(connectionId: string): Promise<void> {
    this.#log.debug('closing an MQTT connection is not possible from the data plane', { connectionId });
  }
}
