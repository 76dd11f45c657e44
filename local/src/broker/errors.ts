/**
 * Typed errors of the broker's server-side API ({@link Broker.publish}): the IoT data-plane endpoint maps
 * them to HTTP statuses. Errors of a client connection never surface as exceptions: they become MQTT
 * reason codes or a closed connection.
 */

/** Base class: `code` is stable for callers to switch on. */
export class BrokerError extends Error {
  readonly code: 'BROKER_CLOSED' | 'INVALID_TOPIC' | 'PAYLOAD_TOO_LARGE';
  constructor(code: BrokerError['code'], message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The broker was closed. */
export class BrokerClosedError extends BrokerError {
  constructor() {
    super('BROKER_CLOSED', 'the broker is closed');
  }
}

/** A topic that IoT would refuse: wildcards, too long, too many levels, empty. */
export class InvalidTopicError extends BrokerError {
  readonly topic: string;
  constructor(topic: string, why: string) {
    super('INVALID_TOPIC', `invalid topic ${JSON.stringify(topic)}: ${why}`);
    this.topic = topic;
  }
}

/** A payload over the broker's payload limit (IoT: 128 KB). */
export class PayloadTooLargeError extends BrokerError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number) {
    super('PAYLOAD_TOO_LARGE', `payload of ${size} bytes exceeds the ${limit}-byte limit`);
    this.size = size;
    this.limit = limit;
  }
}
