/**
 * The MQTT broker that emulates AWS IoT Core's message broker, for MQTT 3.1.1 and MQTT 5 clients, on any
 * byte stream ({@link Broker.handleStream}); ./transports.ts puts it on TCP and on WebSocket.
 *
 * It knows nothing of IoT policies, authorizers or rules: those plug into {@link BrokerHooks}. What it
 * does itself is the protocol and IoT's broker behaviour (limits, QoS 0/1 only, client-id takeover,
 * keep-alive, `#` not matching its parent), each cited in docs/research/iot-mqtt.md.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createEmulatorLogger, type EmulatorLogger } from '../log.js';
import { Connection, type Delivery, errorText, type SubscriptionEntry } from './connection.js';
import { BrokerClosedError, InvalidTopicError, PayloadTooLargeError } from './errors.js';
import { BROKER_LIMITS, type BrokerLimits, ReasonCode } from './limits.js';
import { TopicTree, validateTopicName } from './topics.js';
import { createWsUpgradeHandler, type ListenOptions, listenTcp, listenWs } from './transports.js';
import type {
  BrokerClient,
  BrokerHooks,
  BrokerListener,
  BrokerOptions,
  BrokerQoS,
  ConnectionMeta,
  PublishProperties,
  ServerPublishOptions,
} from './types.js';

/** The broker's public face. */
export interface Broker {
  readonly limits: Readonly<BrokerLimits>;
  /**
   * Serves one MQTT connection over any byte stream (a TCP socket, a WebSocket stream, a test pipe).
   * Resolves when the connection has ended and its `onDisconnected` hook has run.
   */
  handleStream(stream: Duplex, meta: ConnectionMeta): Promise<void>;
  /** Accepts MQTT over TCP. Sets `TCP_NODELAY` on every socket (Nagle stalls small MQTT packets). */
  listenTcp(options?: ListenOptions): Promise<BrokerListener>;
  /** An HTTP server of its own that serves MQTT over WebSocket on `/mqtt` (404 elsewhere). */
  listenWs(options?: ListenOptions): Promise<BrokerListener>;
  /**
   * For an HTTP server shared with other upgrades: serves the upgrade when its path is `/mqtt` and returns
   * true; returns false (touching nothing) for any other path, so the caller can route it elsewhere.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * A server-side publish (the IoT data plane's Publish, rules' republish): runs `onPublish` with a null
   * client and fans out to subscribers. Resolves to the number of connections it was queued for.
   * @throws {InvalidTopicError} a topic IoT would refuse; {@link PayloadTooLargeError}; {@link BrokerClosedError}
   */
  publish(topic: string, payload: Buffer | Uint8Array | string, options?: ServerPublishOptions): Promise<number>;
  /** The connected client holding `clientId`, if any (for `DeleteConnection` and the authorizer's timers). */
  client(clientId: string): BrokerClient | undefined;
  /** Every connected client. */
  clients(): BrokerClient[];
  /**
   * Resolves once no hook call (`onPublish`, `onConnected`, `onDisconnected`) is in flight and every
   * connection the broker has started closing is closed.
   */
  settled(): Promise<void>;
  /** Ends every connection (MQTT 5 clients get 0x8B Server shutting down) and every listener. */
  close(): Promise<void>;
}

/** What connections need from the broker (internal). */
export interface BrokerCore {
  readonly limits: Readonly<BrokerLimits>;
  now(): number;
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void;
  /**
   * Calls a hook; a throw or rejection is logged and answered with `fallback`, so one failing hook call
   * refuses one operation and nothing else.
   */
  hook<T>(name: keyof BrokerHooks, fallback: T, call: (hooks: BrokerHooks) => Promise<T>): Promise<T>;
  /** Makes {@link Broker.settled} wait for `work` too (a closing connection's `onDisconnected`). */
  waitFor(work: Promise<void>): void;
  /** Calls a notification hook in the background; {@link Broker.settled} waits for it. */
  track(name: keyof BrokerHooks, call: (hooks: BrokerHooks) => Promise<void> | undefined): Promise<void>;
  register(connection: Connection): void;
  unregister(connection: Connection): void;
  subscribe(connection: Connection, filter: string, entry: SubscriptionEntry): void;
  unsubscribe(connection: Connection, filter: string): void;
  publish(
    publisher: Connection | null,
    topic: string,
    payload: Buffer,
    qos: BrokerQoS,
    properties: PublishProperties | undefined,
  ): number;
}

/**
 * Creates a broker. Nothing listens until {@link Broker.listenTcp} / {@link Broker.listenWs} (or the
 * caller's own server hands streams to {@link Broker.handleStream}).
 * @example
 * const broker = createBroker({ hooks: { authenticate: async (c) => ({ ok: true, principal: c.clientId }) } });
 * const tcp = await broker.listenTcp({ host: '127.0.0.1', port: 1884 });
 * await broker.publish('rt/announcements', JSON.stringify({ text: 'hi' }), { qos: 1 });
 * await broker.close();
 */
export function createBroker(options: BrokerOptions = {}): Broker {
  const hooks = options.hooks ?? {};
  const limits: Readonly<BrokerLimits> = Object.freeze({ ...BROKER_LIMITS, ...options.limits });
  const logger: EmulatorLogger = options.logger ?? createEmulatorLogger({ level: 'silent' });
  const now = options.now ?? Date.now;
  const tree = new TopicTree<Connection, SubscriptionEntry>({
    multiLevelWildcardMatchesParent: options.multiLevelWildcardMatchesParent ?? false,
  });
  const byClientId = new Map<string, Connection>();
  const connections = new Set<Connection>();
  const listeners = new Set<BrokerListener>();
  const pendingHooks = new Set<Promise<void>>();
  let closed = false;

  const core: BrokerCore = {
    limits,
    now,
    log(level, text) {
      logger.line(level, 'MQTT', text);
    },
    async hook(name, fallback, call) {
      try {
        return await call(hooks);
      } catch (error) {
        logger.line('error', 'MQTT', `${name} hook failed: ${errorText(error)}`);
        return fallback;
      }
    },
    waitFor(work) {
      pendingHooks.add(work);
      void work.finally(() => pendingHooks.delete(work));
    },
    track(name, call) {
      const running = (async () => {
        try {
          await call(hooks);
        } catch (error) {
          logger.line('error', 'MQTT', `${name} hook failed: ${errorText(error)}`);
        }
      })();
      core.waitFor(running);
      return running;
    },
    register(connection) {
      const previous = byClientId.get(connection.clientId);
      byClientId.set(connection.clientId, connection);
      if (previous && previous !== connection) {
        void previous.disconnect({
          reason: 'DUPLICATE_CLIENTID',
          clientInitiated: false,
          reasonCode: ReasonCode.SessionTakenOver,
        });
      }
    },
    unregister(connection) {
      if (byClientId.get(connection.clientId) === connection) byClientId.delete(connection.clientId);
      for (const filter of connection.subscriptions.keys()) tree.remove(filter, connection);
      connection.subscriptions.clear();
    },
    subscribe(connection, filter, entry) {
      tree.add(filter, connection, entry);
    },
    unsubscribe(connection, filter) {
      tree.remove(filter, connection);
    },
    publish(publisher, topic, payload, qos, properties) {
      const handle = publisher?.handle ?? null;
      // The rules engine sees the message independently of fan-out: not awaited, failures only logged.
      if (hooks.onPublish) void core.track('onPublish', (h) => h.onPublish?.(handle, topic, payload, qos, properties));
      // One delivery per subscriber, at the highest QoS of its matching subscriptions (MQTT 5 §3.3.4).
      const targets = new Map<Connection, BrokerQoS>();
      tree.match(topic, (connection, entry) => {
        if (entry.noLocal && connection === publisher) return;
        const current = targets.get(connection);
        if (current === undefined || entry.qos > current) targets.set(connection, entry.qos);
      });
      for (const [connection, subscriptionQos] of targets) {
        const delivery: Delivery = { topic, payload, qos: Math.min(qos, subscriptionQos) as BrokerQoS };
        if (properties) delivery.properties = properties;
        connection.deliver(delivery);
      }
      return targets.size;
    },
  };

  const handleStream = (stream: Duplex, meta: ConnectionMeta): Promise<void> => {
    if (closed) {
      stream.destroy();
      return Promise.resolve();
    }
    const connection = new Connection(core, stream, meta);
    connections.add(connection);
    void connection.closed.then(() => connections.delete(connection));
    return connection.closed;
  };

  const upgrade = createWsUpgradeHandler({
    maxMessageBytes: limits.maxPacketBytes * 4,
    handleStream,
    onError: (error) => logger.line('error', 'MQTT', `WebSocket upgrade failed: ${errorText(error)}`),
  });

  const track = (listener: BrokerListener): BrokerListener => {
    listeners.add(listener);
    return {
      host: listener.host,
      port: listener.port,
      close: async () => {
        listeners.delete(listener);
        await listener.close();
      },
    };
  };

  return {
    limits,
    handleStream,
    async listenTcp(listenOptions) {
      if (closed) throw new BrokerClosedError();
      return track(await listenTcp(handleStream, listenOptions));
    },
    async listenWs(listenOptions) {
      if (closed) throw new BrokerClosedError();
      return track(await listenWs(upgrade, listenOptions));
    },
    handleUpgrade(req, socket, head) {
      return upgrade(req, socket, head);
    },
    async publish(topic, payload, publishOptions = {}) {
      if (closed) throw new BrokerClosedError();
      const invalid = validateTopicName(topic, limits);
      if (invalid) throw new InvalidTopicError(topic, invalid);
      const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
      if (bytes.length > limits.maxPayloadBytes) throw new PayloadTooLargeError(bytes.length, limits.maxPayloadBytes);
      return core.publish(null, topic, bytes, publishOptions.qos ?? 0, publishOptions.properties);
    },
    client(clientId) {
      const connection = byClientId.get(clientId);
      return connection?.isConnected ? connection.handle : undefined;
    },
    clients() {
      return [...byClientId.values()].flatMap((c) => (c.isConnected && c.handle ? [c.handle] : []));
    },
    async settled() {
      while (pendingHooks.size > 0) await Promise.allSettled([...pendingHooks]);
    },
    async close() {
      closed = true;
      // Connections first, so MQTT 5 clients hear 0x8B before the listeners cut their sockets.
      await Promise.all(
        [...connections].map((c) =>
          c.disconnect({
            reason: 'SERVER_INITIATED_DISCONNECT',
            clientInitiated: false,
            reasonCode: ReasonCode.ServerShuttingDown,
          }),
        ),
      );
      await Promise.all([...listeners].map((l) => l.close()));
      listeners.clear();
      while (pendingHooks.size > 0) await Promise.allSettled([...pendingHooks]);
    },
  };
}
