/**
 * One MQTT connection on any byte stream: CONNECT/CONNACK, the packet flow of MQTT 3.1.1 and MQTT 5 as
 * IoT Core answers it, keep-alive, and QoS 1 delivery with packet ids and PUBACK tracking.
 *
 * Packets of one connection are handled one after another (a chain of promises): the hooks are async, and
 * a client's publishes must reach subscribers in the order it sent them (MQTT's ordered topics).
 * Deliveries to one subscriber are chained the same way, since `authorizeDelivery` is async too.
 *
 * Sessions are always clean: subscriptions and unacknowledged messages end with the connection, and
 * CONNACK says `sessionPresent: false` (docs/research/iot-mqtt.md compares with IoT's persistent sessions).
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import {
  parser as createParser,
  generate,
  type IConnackPacket,
  type IConnectPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type IUnsubscribePacket,
  type Packet,
  type Parser,
} from 'mqtt-packet';
import type { BrokerCore } from './broker.js';
import { PacketFramer } from './framer.js';
import { ConnectReturnCode, ReasonCode, SUBACK_FAILURE_V4 } from './limits.js';
import { validateTopicFilter, validateTopicName } from './topics.js';
import type {
  AuthenticateResult,
  BrokerClient,
  BrokerQoS,
  ConnectionMeta,
  DisconnectInfo,
  DisconnectReason,
  MqttVersion,
  PublishProperties,
} from './types.js';

/** A connection that sends no CONNECT is dropped after this long (emulator choice; IoT documents none). */
const CONNECT_TIMEOUT_MS = 10_000;
/** After a server-side close is flushed, a peer that does not close its end is cut off after this long. */
const CLOSE_GRACE_MS = 1_000;
/** Packet ids are 16-bit and never 0. */
const MAX_PACKET_ID = 0xffff;

/** One message on its way to a subscriber. */
export interface Delivery {
  topic: string;
  payload: Buffer;
  qos: BrokerQoS;
  properties?: PublishProperties;
}

/** A subscription as the topic tree stores it. */
export interface SubscriptionEntry {
  qos: BrokerQoS;
  /** MQTT 5 No Local: messages this connection publishes are not sent back to it. */
  noLocal: boolean;
}

type State = 'awaiting-connect' | 'connecting' | 'connected' | 'closed';

/** The state of one network connection, from the first byte to the close. */
export class Connection {
  readonly meta: ConnectionMeta;
  /** Set once CONNACK accepted the client; hooks receive it. */
  handle: BrokerClient | undefined;
  clientId = '';
  readonly subscriptions = new Map<string, SubscriptionEntry>();
  /** Resolves when the stream is gone and `onDisconnected` (if due) has run. */
  readonly closed: Promise<void>;

  private state: State = 'awaiting-connect';
  private version: MqttVersion | undefined;
  private parser: Parser;
  private readonly framer: PacketFramer;
  private work: Promise<void> = Promise.resolve();
  private deliveries: Promise<void> = Promise.resolve();
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private nextPacketId = 1;
  private readonly inflight = new Set<number>();
  private readonly queued: Delivery[] = [];
  private clientMaxPacketSize = Number.POSITIVE_INFINITY;
  private disconnectInfo: DisconnectInfo | undefined;
  private resolveClosed!: () => void;
  private streamClosed = false;

  constructor(
    private readonly core: BrokerCore,
    private readonly stream: Duplex,
    meta: ConnectionMeta,
  ) {
    this.meta = meta;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.framer = new PacketFramer(core.limits.maxPacketBytes);
    this.parser = this.newParser(undefined);
    this.connectTimer = setTimeout(
      () => this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false }),
      CONNECT_TIMEOUT_MS,
    );
    this.connectTimer.unref();
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    // A peer that half-closes has gone: MQTT has no use for a half-open connection.
    // Nothing more can be said to a peer that ended or broke its side: destroy at once, even when the
    // close began on our side (a write into a closing WebSocket errors, and the stream would linger).
    stream.on('end', () => this.peerGone());
    stream.on('error', (error: Error) => {
      this.core.log('debug', `${this.describe()} stream error: ${error.message}`);
      this.peerGone();
    });
    stream.on('close', () => {
      this.streamClosed = true;
      this.terminate({ reason: 'CONNECTION_LOST', clientInitiated: false });
      void this.finish();
    });
  }

  private peerGone(): void {
    this.terminate({ reason: 'CONNECTION_LOST', clientInitiated: false }, true);
    this.stream.destroy();
  }

  /** Whether CONNACK accepted the client and the connection is still open. */
  get isConnected(): boolean {
    return this.state === 'connected';
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  get protocolVersion(): MqttVersion {
    return this.version ?? 4;
  }

  /** Queues a message for this subscriber; `authorizeDelivery` decides at delivery time. */
  deliver(message: Delivery): void {
    this.deliveries = this.deliveries.then(async () => {
      if (!this.isConnected || !this.handle) return;
      const handle = this.handle;
      const allowed = await this.core.hook('authorizeDelivery', false, (h) =>
        h.authorizeDelivery ? h.authorizeDelivery(handle, message.topic) : Promise.resolve(true),
      );
      if (!allowed || !this.isConnected) return;
      if (message.qos === 1 && this.inflight.size >= this.core.limits.maxInflightOutbound) {
        // IoT: "no new publish requests are sent to the client until the client acknowledges".
        if (this.queued.length >= this.core.limits.maxQueuedOutbound) this.queued.shift();
        this.queued.push(message);
        return;
      }
      this.sendPublish(message);
    });
  }

  /**
   * Ends the connection from the server side: an MQTT 5 client first gets DISCONNECT with `reasonCode`.
   * Idempotent; resolves when the connection is closed.
   */
  disconnect(info: DisconnectInfo): Promise<void> {
    this.terminate(info);
    return this.closed;
  }

  // ---- inbound ----------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    const result = this.framer.push(chunk);
    if (result.kind === 'too-large') {
      this.core.log('info', `${this.describe()} sent a ${result.size}-byte packet, over the limit`);
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.PacketTooLarge });
      return;
    }
    if (result.kind === 'malformed') {
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.MalformedPacket });
      return;
    }
    for (const frame of result.frames) {
      // A packet of this batch may have closed the connection already (parsing emits synchronously).
      if (this.isClosed()) return;
      // IoT resets the keep-alive timer on every packet it receives from the client.
      this.keepAliveTimer?.refresh();
      this.parser.parse(frame);
    }
  }

  private newParser(version: MqttVersion | undefined): Parser {
    const parser = createParser(version === undefined ? {} : { protocolVersion: version });
    parser.on('packet', (packet: Packet) => this.onPacket(packet));
    parser.on('error', (error: Error) => {
      this.core.log('info', `${this.describe()} sent a malformed packet: ${error.message}`);
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.MalformedPacket });
    });
    return parser;
  }

  private onPacket(packet: Packet): void {
    if (packet.cmd === 'connect' && this.state === 'awaiting-connect') {
      const version = packet.protocolVersion;
      if (version === 4 || version === 5) {
        // Switch now, before the next frame is parsed: packets after CONNECT use its protocol version.
        this.version = version;
        this.parser = this.newParser(version);
      }
      this.state = 'connecting';
    }
    this.work = this.work
      .then(() => this.handlePacket(packet))
      .catch((error: unknown) => {
        this.core.log('error', `${this.describe()} ${packet.cmd} failed: ${errorText(error)}`);
        this.terminate({ reason: 'SERVER_ERROR', clientInitiated: false, reasonCode: ReasonCode.UnspecifiedError });
      });
  }

  private async handlePacket(packet: Packet): Promise<void> {
    if (this.state === 'closed') return;
    if (packet.cmd === 'connect') {
      if (this.handle || this.version === undefined || this.state !== 'connecting') {
        // A second CONNECT is a protocol violation; IoT counts it as CLIENT_ERROR.
        if (this.handle) {
          this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.ProtocolError });
        } else {
          this.refuseVersion();
        }
        return;
      }
      await this.handleConnect(packet);
      return;
    }
    if (!this.isConnected) {
      // Nothing but CONNECT may come first (MQTT 3.1.1 §3.1, MQTT 5 §3.1).
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.ProtocolError });
      return;
    }
    switch (packet.cmd) {
      case 'publish':
        await this.handlePublish(packet);
        return;
      case 'puback':
        if (packet.messageId !== undefined) this.acknowledge(packet.messageId);
        return;
      case 'subscribe':
        await this.handleSubscribe(packet);
        return;
      case 'unsubscribe':
        this.handleUnsubscribe(packet);
        return;
      case 'pingreq':
        this.send({ cmd: 'pingresp' });
        return;
      case 'disconnect':
        this.terminate({ reason: 'CLIENT_INITIATED_DISCONNECT', clientInitiated: true });
        return;
      default:
        // PUBREC, PUBREL, PUBCOMP and AUTH are not supported by IoT; the rest are server-to-client packets.
        this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.ProtocolError });
    }
  }

  /** MQTT 3.1 (level 3) or an unknown level: IoT speaks 3.1.1 and 5 only. */
  private refuseVersion(): void {
    this.writeRaw(
      { cmd: 'connack', returnCode: ConnectReturnCode.UnacceptableProtocolVersion, sessionPresent: false },
      4,
    );
    this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false });
  }

  private async handleConnect(packet: IConnectPacket): Promise<void> {
    const v5 = this.version === 5;
    const limits = this.core.limits;
    if (this.connectTimer) clearTimeout(this.connectTimer);

    let clientId = packet.clientId;
    let assigned = false;
    if (clientId === '') {
      if (!v5 && packet.clean === false) {
        // MQTT 3.1.1 §3.1.3.1: an empty client id needs clean session.
        this.refuseConnect(ReasonCode.ClientIdentifierNotValid, ConnectReturnCode.IdentifierRejected);
        return;
      }
      clientId = randomUUID();
      assigned = true;
    }
    if (
      Buffer.byteLength(clientId, 'utf8') > limits.maxClientIdBytes ||
      // IoT reserves the `$` prefix for client ids it generates.
      (!assigned && clientId.startsWith('$'))
    ) {
      this.refuseConnect(ReasonCode.ClientIdentifierNotValid, ConnectReturnCode.IdentifierRejected);
      return;
    }
    if (v5 && packet.will && (packet.will.qos ?? 0) > 1) {
      // IoT's CONNACK table: 0x9B "The server does not support the QoS set in Will QoS".
      this.refuseConnect(ReasonCode.QoSNotSupported, ConnectReturnCode.NotAuthorized);
      return;
    }

    const request = {
      ...this.meta,
      clientId,
      protocolVersion: this.version as MqttVersion,
      clean: packet.clean !== false,
      keepAlive: packet.keepalive ?? 0,
      ...(packet.username !== undefined ? { username: packet.username } : {}),
      ...(packet.password !== undefined ? { password: Buffer.from(packet.password) } : {}),
    };
    const verdict = await this.core.hook<AuthenticateResult>('authenticate', { ok: false }, (h) =>
      h.authenticate ? h.authenticate(request) : Promise.resolve({ ok: true, principal: undefined }),
    );
    if (this.state !== 'connecting') return; // the client went away while the authorizer ran
    if (!verdict.ok) {
      this.core.log('info', `CONNECT ${clientId} refused: not authorized`);
      this.refuseConnect(ReasonCode.NotAuthorized, ConnectReturnCode.NotAuthorized);
      return;
    }

    const keepAlive = this.negotiateKeepAlive(packet.keepalive ?? 0);
    this.clientId = clientId;
    this.clientMaxPacketSize = packet.properties?.maximumPacketSize ?? Number.POSITIVE_INFINITY;
    this.handle = this.createHandle(verdict.principal);

    // IoT accepts the new connection and disconnects the one holding the client id (DUPLICATE_CLIENTID).
    this.core.register(this);

    const connack: IConnackPacket = { cmd: 'connack', sessionPresent: false };
    if (v5) {
      connack.reasonCode = ReasonCode.Success;
      connack.properties = {
        maximumQoS: 1,
        // Retained messages are not stored yet (docs/research/iot-mqtt.md).
        retainAvailable: false,
        maximumPacketSize: limits.maxPacketBytes,
        receiveMaximum: limits.maxInflightOutbound,
        wildcardSubscriptionAvailable: true,
        subscriptionIdentifiersAvailable: false,
        sharedSubscriptionAvailable: false,
      };
      // Sessions are clean only: say so when the client asked for a session that outlives the connection.
      if ((packet.properties?.sessionExpiryInterval ?? 0) > 0) connack.properties.sessionExpiryInterval = 0;
      if (keepAlive !== (packet.keepalive ?? 0)) connack.properties.serverKeepAlive = keepAlive;
      if (assigned) connack.properties.assignedClientIdentifier = clientId;
    } else {
      connack.returnCode = ConnectReturnCode.Accepted;
    }
    this.state = 'connected';
    this.send(connack);
    // IoT starts the keep-alive timer when it sends CONNACK and disconnects at 1.5 x the interval.
    this.keepAliveTimer = setTimeout(
      () =>
        this.terminate({
          reason: 'MQTT_KEEP_ALIVE_TIMEOUT',
          clientInitiated: false,
          reasonCode: ReasonCode.KeepAliveTimeout,
        }),
      keepAlive * 1500,
    );
    this.keepAliveTimer.unref();
    this.core.log('info', `CONNECT ${clientId} v${v5 ? '5' : '3.1.1'} ${this.meta.transport} keepalive ${keepAlive}s`);
    const handle = this.handle;
    this.core.track('onConnected', (h) => h.onConnected?.(handle));
  }

  /** IoT's keep-alive rules: 0 or more than the maximum become the default; less than the minimum, the minimum. */
  private negotiateKeepAlive(requested: number): number {
    const l = this.core.limits;
    if (requested === 0 || requested > l.maxKeepAliveSeconds) return l.defaultKeepAliveSeconds;
    return Math.max(requested, l.minKeepAliveSeconds);
  }

  private refuseConnect(v5Code: number, v4Code: number): void {
    const connack: IConnackPacket =
      this.version === 5
        ? { cmd: 'connack', sessionPresent: false, reasonCode: v5Code }
        : { cmd: 'connack', sessionPresent: false, returnCode: v4Code };
    this.send(connack);
    this.terminate({ reason: 'AUTH_ERROR', clientInitiated: false });
  }

  private async handlePublish(packet: IPublishPacket): Promise<void> {
    const v5 = this.version === 5;
    const handle = this.handle as BrokerClient;
    if (packet.qos === 2) {
      // IoT supports QoS 0 and 1 only. MQTT 5: DISCONNECT 0x9B (QoS greater than CONNACK's Maximum QoS);
      // MQTT 3.1.1 has no way to say it, and IoT sends no PUBREC: the connection is closed.
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.QoSNotSupported });
      return;
    }
    if (packet.properties?.topicAlias !== undefined) {
      // CONNACK announced no Topic Alias Maximum, i.e. 0: any alias is invalid (MQTT 5 §3.3.2.3.4).
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.TopicAliasInvalid });
      return;
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (payload.length > this.core.limits.maxPayloadBytes) {
      // IoT's lifecycle events: publishing over the payload limit disconnects the client (CLIENT_ERROR).
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.PacketTooLarge });
      return;
    }
    const invalid = validateTopicName(packet.topic, this.core.limits);
    if (invalid) {
      this.core.log('info', `${this.describe()} published to an invalid topic: ${invalid}`);
      this.terminate({ reason: 'CLIENT_ERROR', clientInitiated: false, reasonCode: ReasonCode.TopicNameInvalid });
      return;
    }
    const allowed = await this.core.hook('authorizePublish', false, (h) =>
      h.authorizePublish ? h.authorizePublish(handle, packet.topic) : Promise.resolve(true),
    );
    if (!this.isConnected) return;
    if (!allowed) {
      this.core.log('info', `${this.describe()} PUBLISH ${packet.topic} not authorized`);
      if (!v5) {
        // MQTT 3.1.1 cannot refuse a publish: IoT closes the connection (AUTH_ERROR).
        this.terminate({ reason: 'AUTH_ERROR', clientInitiated: false });
      } else if (packet.qos === 1) {
        this.send({ cmd: 'puback', messageId: packet.messageId, reasonCode: ReasonCode.NotAuthorized });
      }
      // An MQTT 5 QoS 0 publish has no acknowledgement to carry the refusal: it is dropped.
      return;
    }
    const properties = forwardableProperties(packet.properties);
    this.core.publish(this, packet.topic, payload, packet.qos, properties);
    if (packet.qos === 1) {
      this.send(
        v5
          ? { cmd: 'puback', messageId: packet.messageId, reasonCode: ReasonCode.Success }
          : { cmd: 'puback', messageId: packet.messageId },
      );
    }
  }

  private async handleSubscribe(packet: ISubscribePacket): Promise<void> {
    const v5 = this.version === 5;
    const handle = this.handle as BrokerClient;
    const limits = this.core.limits;
    if (packet.properties?.subscriptionIdentifier !== undefined) {
      // IoT's DISCONNECT table: 0xA1 "The server does not support subscription identifiers".
      this.terminate({
        reason: 'CLIENT_ERROR',
        clientInitiated: false,
        reasonCode: ReasonCode.SubscriptionIdentifiersNotSupported,
      });
      return;
    }
    const failure = (v5Code: number) => (v5 ? v5Code : SUBACK_FAILURE_V4);
    const granted: number[] = [];
    for (const [index, subscription] of packet.subscriptions.entries()) {
      const filter = subscription.topic;
      if (index >= limits.maxFiltersPerSubscribe) {
        granted.push(failure(ReasonCode.QuotaExceeded));
        continue;
      }
      if (filter.startsWith('$share/')) {
        granted.push(failure(ReasonCode.SharedSubscriptionsNotSupported));
        continue;
      }
      if (validateTopicFilter(filter, limits)) {
        granted.push(failure(ReasonCode.TopicFilterInvalid));
        continue;
      }
      if (!this.subscriptions.has(filter) && this.subscriptions.size >= limits.maxSubscriptionsPerConnection) {
        granted.push(failure(ReasonCode.QuotaExceeded));
        continue;
      }
      const allowed = await this.core.hook('authorizeSubscribe', false, (h) =>
        h.authorizeSubscribe ? h.authorizeSubscribe(handle, filter) : Promise.resolve(true),
      );
      if (!this.isConnected) return;
      if (!allowed) {
        this.core.log('info', `${this.describe()} SUBSCRIBE ${filter} not authorized`);
        granted.push(failure(ReasonCode.NotAuthorized));
        continue;
      }
      // QoS 2 is granted as QoS 1: IoT's SUBACK codes say the granted QoS "might be lower than requested".
      const qos: BrokerQoS = subscription.qos >= 1 ? 1 : 0;
      const entry: SubscriptionEntry = { qos, noLocal: v5 && subscription.nl === true };
      this.subscriptions.set(filter, entry);
      this.core.subscribe(this, filter, entry);
      granted.push(qos);
    }
    this.send({ cmd: 'suback', messageId: packet.messageId, granted });
  }

  private handleUnsubscribe(packet: IUnsubscribePacket): void {
    for (const filter of packet.unsubscriptions) {
      if (this.subscriptions.delete(filter)) this.core.unsubscribe(this, filter);
    }
    const granted = packet.unsubscriptions.map(() => ReasonCode.Success);
    this.send(
      this.version === 5
        ? { cmd: 'unsuback', messageId: packet.messageId, granted }
        : { cmd: 'unsuback', messageId: packet.messageId, granted: [] },
    );
  }

  // ---- outbound ---------------------------------------------------------------------------------

  private sendPublish(message: Delivery): void {
    const packet: IPublishPacket = {
      cmd: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      dup: false,
      retain: false,
    };
    if (this.version === 5 && message.properties) packet.properties = message.properties;
    let messageId: number | undefined;
    if (message.qos === 1) {
      messageId = this.allocatePacketId();
      packet.messageId = messageId;
    }
    const bytes = this.encode(packet);
    if (!bytes) return;
    if (bytes.length > this.clientMaxPacketSize) {
      // MQTT 5 §3.1.2.11.4: a packet over the client's Maximum Packet Size is discarded, not sent.
      this.core.log('debug', `${this.describe()} message on ${message.topic} exceeds the client's maximum packet size`);
      return;
    }
    if (messageId !== undefined) this.inflight.add(messageId);
    this.stream.write(bytes);
  }

  private acknowledge(messageId: number): void {
    if (!this.inflight.delete(messageId)) return;
    while (this.queued.length > 0 && this.inflight.size < this.core.limits.maxInflightOutbound && this.isConnected) {
      this.sendPublish(this.queued.shift() as Delivery);
    }
  }

  private allocatePacketId(): number {
    // At most maxInflightOutbound ids are in use, far below 65535, so this loop ends quickly.
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id >= MAX_PACKET_ID ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  private send(packet: Packet): void {
    this.writeRaw(packet, this.protocolVersion);
  }

  private writeRaw(packet: Packet, version: MqttVersion): void {
    if (this.stream.destroyed || this.stream.writableEnded) return;
    const bytes = this.encode(packet, version);
    if (bytes) this.stream.write(bytes);
  }

  private encode(packet: Packet, version: MqttVersion = this.protocolVersion): Buffer | undefined {
    try {
      return generate(packet, { protocolVersion: version });
    } catch (error) {
      this.core.log('error', `${this.describe()} cannot encode ${packet.cmd}: ${errorText(error)}`);
      return undefined;
    }
  }

  // ---- closing ----------------------------------------------------------------------------------

  /** Closes once: sends an MQTT 5 DISCONNECT when there is a reason code to tell, ends the stream. */
  private terminate(info: DisconnectInfo, peerGone = false): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.core.waitFor(this.closed);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    this.queued.length = 0;
    this.core.unregister(this);
    if (wasConnected) {
      // Stamped now, not when the stream has finished closing (see DisconnectInfo.at).
      this.disconnectInfo = { ...info, at: info.at ?? this.core.now() };
      this.core.log('info', `DISCONNECT ${this.clientId} ${info.reason}`);
    }
    // MQTT 5 lets the server say why (DISCONNECT with a reason code); 3.1.1 only closes the connection.
    // A DISCONNECT may only follow a CONNACK (MQTT 5 §4.13.1), and the client's own DISCONNECT gets none.
    if (wasConnected && this.version === 5 && !info.clientInitiated && info.reasonCode !== undefined) {
      this.writeRaw({ cmd: 'disconnect', reasonCode: info.reasonCode }, 5);
    }
    if (this.streamClosed) {
      void this.finish();
      return;
    }
    if (peerGone) {
      this.stream.destroy();
      return;
    }
    this.stream.end();
    setTimeout(() => this.stream.destroy(), CLOSE_GRACE_MS).unref();
  }

  private finishing: Promise<void> | undefined;

  /** Runs `onDisconnected` once the stream is gone, then resolves {@link closed}. */
  private finish(): Promise<void> {
    if (!this.streamClosed) return this.closed;
    this.finishing ??= (async () => {
      const handle = this.handle;
      const info = this.disconnectInfo;
      if (handle && info) await this.core.track('onDisconnected', (h) => h.onDisconnected?.(handle, info));
      this.resolveClosed();
    })();
    return this.finishing;
  }

  private createHandle(principal: unknown): BrokerClient {
    const connection = this;
    const connectedAt = this.core.now();
    return {
      clientId: this.clientId,
      principal,
      protocolVersion: this.protocolVersion,
      transport: this.meta.transport,
      ...(this.meta.remoteAddress !== undefined ? { remoteAddress: this.meta.remoteAddress } : {}),
      connectedAt,
      get connected() {
        return connection.isConnected;
      },
      disconnect(
        reasonCode: number = ReasonCode.AdministrativeAction,
        reason: DisconnectReason = 'SERVER_INITIATED_DISCONNECT',
      ) {
        return connection.disconnect({ reason, clientInitiated: false, reasonCode });
      },
    };
  }

  private describe(): string {
    return this.clientId ? `client ${this.clientId}` : `${this.meta.transport} ${this.meta.remoteAddress ?? ''}`.trim();
  }
}

/** MQTT 5 properties IoT forwards to subscribers; the topic alias is per connection and is not one of them. */
function forwardableProperties(properties: IPublishPacket['properties']): PublishProperties | undefined {
  if (!properties) return undefined;
  const out: PublishProperties = {};
  if (properties.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = properties.payloadFormatIndicator;
  if (properties.messageExpiryInterval !== undefined) out.messageExpiryInterval = properties.messageExpiryInterval;
  if (properties.contentType !== undefined) out.contentType = properties.contentType;
  if (properties.responseTopic !== undefined) out.responseTopic = properties.responseTopic;
  if (properties.correlationData !== undefined) out.correlationData = properties.correlationData;
  if (properties.userProperties !== undefined) out.userProperties = properties.userProperties;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A thrown value as a log line. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
