/**
 * The emulator's IoT Core-style MQTT broker (MQTT 3.1.1 and 5, TCP and WebSocket). See ./broker.ts.
 */
export { type Broker, createBroker } from './broker.js';
export { BrokerClosedError, BrokerError, InvalidTopicError, PayloadTooLargeError } from './errors.js';
export { BROKER_LIMITS, type BrokerLimits, ConnectReturnCode, ReasonCode, SUBACK_FAILURE_V4 } from './limits.js';
export { TopicTree, validateTopicFilter, validateTopicName } from './topics.js';
export { type ListenOptions, MQTT_WS_PATH } from './transports.js';
export type {
  AuthenticateResult,
  BrokerClient,
  BrokerHooks,
  BrokerListener,
  BrokerOptions,
  BrokerQoS,
  BrokerTransport,
  ConnectionMeta,
  ConnectRequest,
  DisconnectInfo,
  DisconnectReason,
  MqttVersion,
  PublishProperties,
  ServerPublishOptions,
} from './types.js';
