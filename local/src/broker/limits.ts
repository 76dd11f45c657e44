/**
 * AWS IoT Core's message broker limits and the MQTT reason codes the broker answers with. Every number
 * here is cited in docs/research/iot-mqtt.md; the broker takes them as defaults that tests may override.
 */
import { IOT_LIMITS } from '@viba-realtime/protocol';

/** The IoT Core limits the broker enforces. Every field can be overridden through `createBroker({ limits })`. */
export interface BrokerLimits {
  /** Largest PUBLISH payload in bytes. IoT: 128 KB ("rejects publish and connect requests larger"). */
  maxPayloadBytes: number;
  /**
   * Largest control packet in bytes (remaining length) read off the wire. Anything larger ends the
   * connection before it is buffered. It is the payload limit plus room for the topic and MQTT 5
   * properties, so a publish just over the payload limit still reaches the payload check.
   */
  maxPacketBytes: number;
  /** Longest topic name or topic filter, UTF-8 bytes. IoT: 256. */
  maxTopicBytes: number;
  /** Most forward slashes in a topic or topic filter. IoT: 7. */
  maxTopicSlashes: number;
  /** Longest client id, UTF-8 bytes. IoT: 128. */
  maxClientIdBytes: number;
  /** Subscriptions one connection may hold. IoT: 50. */
  maxSubscriptionsPerConnection: number;
  /** Topic filters in one SUBSCRIBE. IoT: 8. */
  maxFiltersPerSubscribe: number;
  /** Unacknowledged outbound QoS 1 publishes per client; more wait in a queue. IoT: 100. */
  maxInflightOutbound: number;
  /** Messages queued behind a full in-flight window before the oldest are dropped (emulator-only bound). */
  maxQueuedOutbound: number;
  /** Keep-alive IoT uses when the client asks for 0 or for more than `maxKeepAliveSeconds`. IoT: 1200. */
  defaultKeepAliveSeconds: number;
  /** Smallest keep-alive; a smaller non-zero request is raised to it. IoT: 30. Tests lower it. */
  minKeepAliveSeconds: number;
  /** Largest keep-alive. IoT: 1200. */
  maxKeepAliveSeconds: number;
}

/** IoT Core's values, from the contract (docs/research/iot-mqtt.md cites each one), plus two bounds of the
 * emulator's own. Named `BROKER_LIMITS` so it is not mistaken for the protocol's `IOT_LIMITS`. */
export const BROKER_LIMITS: Readonly<BrokerLimits> = Object.freeze({
  maxPayloadBytes: IOT_LIMITS.maxPayloadBytes,
  // Room for the topic and MQTT 5 properties, so a publish just over the payload limit still reaches the
  // payload check instead of being cut off as a malformed packet.
  maxPacketBytes: IOT_LIMITS.maxPayloadBytes + 8 * 1024,
  maxTopicBytes: IOT_LIMITS.maxTopicBytes,
  maxTopicSlashes: IOT_LIMITS.maxTopicSlashes,
  maxClientIdBytes: IOT_LIMITS.maxClientIdBytes,
  maxSubscriptionsPerConnection: IOT_LIMITS.maxSubscriptionsPerConnection,
  maxFiltersPerSubscribe: IOT_LIMITS.maxFiltersPerSubscribe,
  maxInflightOutbound: IOT_LIMITS.maxInflightOutbound,
  maxQueuedOutbound: 1000,
  defaultKeepAliveSeconds: IOT_LIMITS.defaultKeepAliveSeconds,
  minKeepAliveSeconds: IOT_LIMITS.minKeepAliveSeconds,
  maxKeepAliveSeconds: IOT_LIMITS.maxKeepAliveSeconds,
});

/** MQTT 5 reason codes the broker sends (MQTT 5.0 §2.4; IoT's subset is in its "MQTT reason codes" table). */
export const ReasonCode = {
  Success: 0x00,
  GrantedQoS1: 0x01,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  NotAuthorized: 0x87,
  ServerShuttingDown: 0x8b,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketTooLarge: 0x95,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  QoSNotSupported: 0x9b,
  SharedSubscriptionsNotSupported: 0x9e,
  SubscriptionIdentifiersNotSupported: 0xa1,
  TopicAliasInvalid: 0x94,
} as const;

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3). */
export const ConnectReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  NotAuthorized: 5,
} as const;

/** MQTT 3.1.1 SUBACK failure return code (§3.9.3). */
export const SUBACK_FAILURE_V4 = 0x80;
