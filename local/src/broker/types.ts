/**
 * The broker's public types: the hooks through which the IoT policy evaluator, the custom authorizer and
 * the rules engine plug in, the client handle they receive, and the broker's options.
 */
import type { EmulatorLogger } from '../log.js';
import type { BrokerLimits } from './limits.js';

/** MQTT protocol level: 4 is MQTT 3.1.1, 5 is MQTT 5. IoT Core speaks these two only. */
export type MqttVersion = 4 | 5;

/** How the client reached the broker. */
export type BrokerTransport = 'tcp' | 'ws';

/** QoS levels IoT Core supports. */
export type BrokerQoS = 0 | 1;

/**
 * Why a connection ended, named as IoT Core's lifecycle events name `disconnectReason`
 * (`$aws/events/presence/disconnected/{clientId}`), so the lifecycle emitter can pass it through.
 */
export type DisconnectReason =
  | 'CLIENT_INITIATED_DISCONNECT'
  | 'CONNECTION_LOST'
  | 'MQTT_KEEP_ALIVE_TIMEOUT'
  | 'DUPLICATE_CLIENTID'
  | 'SERVER_INITIATED_DISCONNECT'
  | 'API_INITIATED_DISCONNECT'
  | 'CLIENT_ERROR'
  | 'AUTH_ERROR'
  | 'SERVER_ERROR';

/** What {@link BrokerHooks.onDisconnected} learns about the end of a connection. */
export interface DisconnectInfo {
  reason: DisconnectReason;
  /** True when the client sent DISCONNECT (IoT's `clientInitiatedDisconnect`). */
  clientInitiated: boolean;
  /** The MQTT 5 reason code sent to (or received from) the client, when there was one. */
  reasonCode?: number;
  /**
   * Epoch ms (the broker's clock) when the broker ended the connection; the broker sets it. The socket may
   * finish closing much later (a peer that does not close its end gets a grace period; a busy event loop
   * delays the close), by which time the client may have reconnected and rejoined.
   */
  at?: number;
}

/** Where a connection comes from: given to {@link Broker.handleStream} by the transport. */
export interface ConnectionMeta {
  transport: BrokerTransport;
  remoteAddress?: string;
  remotePort?: number;
  /** WebSocket only: the upgrade request's headers, names lower-cased, repeated values joined with `,`. */
  headers?: Record<string, string>;
  /** WebSocket only: the upgrade request's query parameters (last value of a repeated name). */
  query?: Record<string, string>;
  /** WebSocket only: the raw query string without `?` (IoT's authorizer event carries it raw). */
  queryString?: string;
}

/** MQTT 5 PUBLISH properties the broker forwards from publisher to MQTT 5 subscribers (IoT supports them). */
export interface PublishProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

/** The CONNECT fields the custom authorizer needs, plus the transport's metadata. */
export interface ConnectRequest extends ConnectionMeta {
  clientId: string;
  username?: string;
  password?: Buffer;
  protocolVersion: MqttVersion;
  /** CONNECT's clean session (3.1.1) / clean start (5) flag. */
  clean: boolean;
  /** The keep-alive the client asked for, seconds. */
  keepAlive: number;
}

/** The authenticate hook's answer: `principal` is kept on the client handle for the other hooks. */
export type AuthenticateResult = { ok: true; principal: unknown } | { ok: false };

/** The broker's view of one connected client, handed to every hook. */
export interface BrokerClient {
  readonly clientId: string;
  /** Whatever {@link BrokerHooks.authenticate} returned (e.g. the authorizer's policy documents). */
  readonly principal: unknown;
  readonly protocolVersion: MqttVersion;
  readonly transport: BrokerTransport;
  readonly remoteAddress?: string;
  /** Epoch ms of the CONNACK. */
  readonly connectedAt: number;
  /** Whether the connection is still open. */
  readonly connected: boolean;
  /**
   * Ends the connection from the server side. MQTT 5 clients get a DISCONNECT with `reasonCode`
   * (default 0x98 Administrative action); 3.1.1 clients have no such packet and see the socket close.
   * Resolves once the connection is gone and {@link BrokerHooks.onDisconnected} has run.
   */
  disconnect(reasonCode?: number, reason?: DisconnectReason): Promise<void>;
}

/**
 * Every hook is optional and async; the defaults allow everything. A hook that throws or rejects refuses
 * the one operation it was asked about (connect, publish, subscribe or delivery), is logged, and never
 * takes the broker down.
 */
export interface BrokerHooks {
  /** CONNECT: the custom authorizer plugs in here. `{ ok: false }` refuses with Not authorized. */
  authenticate?(request: ConnectRequest): Promise<AuthenticateResult>;
  /** PUBLISH from a client (IoT's `iot:Publish`). */
  authorizePublish?(client: BrokerClient, topic: string): Promise<boolean>;
  /** One topic filter of a SUBSCRIBE (IoT's `iot:Subscribe`). */
  authorizeSubscribe?(client: BrokerClient, filter: string): Promise<boolean>;
  /** Each delivery to a subscriber, checked at delivery time as IoT checks `iot:Receive`. */
  authorizeDelivery?(client: BrokerClient, topic: string): Promise<boolean>;
  /**
   * Every authorized publish, from a client or from {@link Broker.publish} (then `client` is null): the
   * rules engine plugs in here. Called before fan-out and independently of it: its failure or slowness
   * does not hold deliveries back.
   */
  onPublish?(
    client: BrokerClient | null,
    topic: string,
    payload: Buffer,
    qos: BrokerQoS,
    properties?: PublishProperties,
  ): Promise<void>;
  /** After CONNACK accepted the client (IoT's `connected` lifecycle event). */
  onConnected?(client: BrokerClient): Promise<void>;
  /** Once per accepted client when its connection ends (IoT's `disconnected` lifecycle event). */
  onDisconnected?(client: BrokerClient, info: DisconnectInfo): Promise<void>;
}

/** Options of `createBroker`. */
export interface BrokerOptions {
  hooks?: BrokerHooks;
  /** Overrides of {@link BROKER_LIMITS}; tests lower the keep-alive floor, for instance. */
  limits?: Partial<BrokerLimits>;
  /**
   * IoT Core does not let `sensor/#` match `sensor` (its documented difference from the MQTT spec, which
   * says it does). @default false, as IoT
   */
  multiLevelWildcardMatchesParent?: boolean;
  /** @default a silent logger */
  logger?: EmulatorLogger;
  /** Epoch ms source for `connectedAt`. @default Date.now */
  now?: () => number;
}

/** Options of `Broker.publish`. */
export interface ServerPublishOptions {
  qos?: BrokerQoS;
  /** Accepted for the data plane's sake; retained messages are not stored (docs/research/iot-mqtt.md). */
  retain?: boolean;
  properties?: PublishProperties;
}

/** A listening socket server of the broker. */
export interface BrokerListener {
  readonly host: string;
  readonly port: number;
  /** Stops listening and ends the connections this listener accepted. */
  close(): Promise<void>;
}
