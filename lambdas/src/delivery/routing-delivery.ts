/**
 * One {@link Delivery} for both channels: MQTT targets (`mqtt:{clientId}`) go to IoT Core, every other
 * target to API Gateway's `@connections`. The fan-out stays channel-agnostic.
 *
 * MQTT delivers per *user*: all of a user's MQTT connections share `rt/users/{sub}/rooms/{room}`, so one
 * publish reaches them all, and a second would deliver the frame twice to each. The fan-out hands the same
 * frame object to every target of one message ({@link Delivery.post}), so the publish is shared by frame
 * identity and user: the first MQTT target of a user publishes, the others get its outcome.
 */
import type { ServerFrame } from '@viba-realtime/protocol';
import { isMqttConnectionId } from '../core/connections.js';
import type { Delivery, DeliveryOutcome, DeliveryTarget } from '../core/ports.js';
import type { Logger } from '../log.js';

/** Options of {@link RoutingDelivery}. */
export interface RoutingDeliveryOptions {
  /** `@connections` delivery for WebSocket targets. */
  websocket: Delivery;
  /** IoT delivery for MQTT targets; without one (no `VIBA_IOT_ENDPOINT`), MQTT targets fail, logged. */
  mqtt: Delivery | undefined;
  log: Logger;
}

export class RoutingDelivery implements Delivery {
  readonly #websocket: Delivery;
  readonly #mqtt: Delivery | undefined;
  readonly #log: Logger;
  /** Per frame, the publish in flight or done for each user. Weak: it lives as long as the fan-out's frame. */
  readonly #published = new WeakMap<ServerFrame, Map<string, Promise<DeliveryOutcome>>>();

  constructor(options: RoutingDeliveryOptions) {
    this.#websocket = options.websocket;
    this.#mqtt = options.mqtt;
    this.#log = options.log;
  }

  post(target: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    if (!isMqttConnectionId(target.connectionId)) return this.#websocket.post(target, frame);
    const mqtt = this.#mqtt;
    if (mqtt === undefined) {
      // Not `gone`: that would delete a live MQTT connection because of our own configuration.
      this.#log.warn('MQTT target but no IoT endpoint configured', { connectionId: target.connectionId });
      return Promise.resolve('failed');
    }
    let perUser = this.#published.get(frame);
    if (perUser === undefined) {
      perUser = new Map();
      this.#published.set(frame, perUser);
    }
    let outcome = perUser.get(target.sub);
    if (outcome === undefined) {
      outcome = mqtt.post(target, frame);
      perUser.set(target.sub, outcome);
    }
    return outcome;
  }

  close(connectionId: string): Promise<void> {
    return isMqttConnectionId(connectionId)
      ? (this.#mqtt?.close(connectionId) ?? Promise.resolve())
      : this.#websocket.close(connectionId);
  }
}
