/**
 * {@link Delivery} over AWS IoT Core's data-plane `Publish`: a room's chat and presence frames reach an MQTT
 * member on their own topic `rt/users/{sub}/rooms/{room}` (design: docs/design/mqtt-channel.md, option 1),
 * notifications on `rt/users/{sub}/inbox`, request answers on `rt/users/{sub}/responses` and announcements on
 * their broadcast topics ({@link IotDelivery.publish}), under the shared retry policy (./retry.ts); it also
 * disconnects MQTT clients (data-plane DeleteConnection).
 *
 * IoT never reports a subscriber gone (a publish succeeds with or without subscribers), so this delivery
 * never answers `gone`: MQTT subscriptions are cleaned up by the `disconnected` lifecycle event instead.
 */
import { DeleteConnectionCommand, IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { type ServerFrame, topics } from '@viba-realtime/protocol';
import { MQTT_CONNECTION_PREFIX } from '../core/connections.js';
import type { Delivery, DeliveryOutcome, DeliveryTarget, TopicPublisher } from '../core/ports.js';
import type { Logger } from '../log.js';
import { type DeliveryClientOptions, DeliveryRetrier, deliveryClientConfig } from './retry.js';

const encoder = new TextEncoder();

/** Options of {@link IotDelivery}; `endpoint` is the account's IoT data endpoint,
 * `https://{prefix}-ats.iot.{region}.amazonaws.com`, or the emulator's `http://127.0.0.1:4000`
 * (`VIBA_IOT_ENDPOINT`). */
export type IotDeliveryOptions = DeliveryClientOptions;

/** The user topic a frame goes to: a room's traffic to the member's room topic, a notification to the inbox.
 * Other frames have no per-user topic (answers go to `responses` through {@link IotDelivery.publish}). */
function userTopicOf(sub: string, frame: ServerFrame): string | undefined {
  if (frame.type === 'chat' || frame.type === 'presence') return topics.userRoom(sub, frame.room);
  if (frame.type === 'notification') return topics.inbox(sub);
  return undefined;
}

const neverGone = () => false;

export class IotDelivery implements Delivery, TopicPublisher {
  readonly client: IoTDataPlaneClient;
  readonly #log: Logger;
  readonly #retrier: DeliveryRetrier;

  constructor(options: IotDeliveryOptions) {
    this.client = new IoTDataPlaneClient(deliveryClientConfig(options));
    this.#log = options.log;
    this.#retrier = new DeliveryRetrier(options);
  }

  /** Publishes a chat or presence frame to the target user's room topic, a notification to their inbox. */
  async post(target: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    const topic = userTopicOf(target.sub, frame);
    if (topic === undefined) {
      this.#log.warn('no MQTT user topic for this frame', { connectionId: target.connectionId, type: frame.type });
      return 'failed';
    }
    return this.publish(topic, frame);
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

  /**
   * Disconnects an MQTT client (`mqtt:{clientId}`) with the data plane's DeleteConnection; IoT then emits
   * its `disconnected` lifecycle event, which cleans the session up. A client not connected is not an error.
   */
  async close(connectionId: string): Promise<void> {
    const clientId = connectionId.startsWith(MQTT_CONNECTION_PREFIX)
      ? connectionId.slice(MQTT_CONNECTION_PREFIX.length)
      : connectionId;
    try {
      await this.client.send(new DeleteConnectionCommand({ clientId, cleanSession: true }));
    } catch (error) {
      if ((error as { name?: string }).name === 'ResourceNotFoundException') return;
      throw error;
    }
  }
}
