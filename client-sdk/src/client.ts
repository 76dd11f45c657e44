/**
 * The client: one connection at a time through a {@link Transport}, a state machine that keeps it up
 * (fresh token before every connect, full-jitter backoff, reconnect before the token or the service's cut
 * ends it, heartbeats), and the parts that make a reconnect invisible: rooms rejoin and catch up, the inbox
 * and announcements catch up, queued requests go out once.
 */
import {
  type ClientFrame,
  type JsonObject,
  parseClientConfig,
  type RealtimeClientConfig,
  type RoomVisibility,
  type ServerFrame,
} from '@viba-realtime/protocol';
import { AnnouncementFeed } from './announcements.js';
import {
  AuthenticationError,
  ConfigError,
  ConnectionError,
  ListenerError,
  RealtimeClientError,
  SchemaError,
  TokenProviderError,
} from './errors.js';
import { fullJitterDelay } from './internal/backoff.js';
import type { BodyKind, ClientContext } from './internal/context.js';
import { Emitter } from './internal/emitter.js';
import { type RequestOptions, RequestQueue } from './internal/requests.js';
import { decodeTokenClaims } from './internal/token.js';
import { NotificationInbox } from './notifications.js';
import { RoomHandle } from './room.js';
import { MQTT_MIN_TOKEN_VALIDITY_MS, type Transport, type TransportConnection } from './transports/transport.js';
import { websocketTransport } from './transports/websocket.js';
import type {
  BodyOf,
  BodyParser,
  ClientEvents,
  ConnectionState,
  RealtimeClient,
  RealtimeClientOptions,
  RealtimeLogger,
  RealtimeSchema,
  Room,
} from './types.js';

/** The defaults of {@link RealtimeClientOptions}. */
export const CLIENT_DEFAULTS = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  /** Four minutes: a ping well inside API Gateway's 10-minute idle timeout, even with a throttled tab timer. */
  heartbeatIntervalMs: 240_000,
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 15_000,
  /** A connection must stay up this long before the backoff starts again from its first step: a service that
   * accepts and drops at once must not get a reconnect every few hundred ms forever. */
  stableConnectionMs: 10_000,
  refreshMarginMs: 60_000,
  offlineQueueSize: 100,
  announcementsLookbackMs: 0,
} as const;

/** A timer can fire at most every 2^31-1 ms; later refreshes are re-armed on the way. */
const MAX_TIMER_MS = 2_147_483_647;

function parseWith<T>(parser: BodyParser<T>, value: unknown): T {
  return typeof parser === 'function' ? parser(value) : parser.parse(value);
}

/** Loads the MQTT transport only when asked for, so the WebSocket-only bundle never contains MQTT.js. */
function lazyMqttTransport(url: string, deviceId: string | undefined, authorizerName: string | undefined): Transport {
  let loaded: Promise<Transport> | undefined;
  const load = () => {
    loaded ??= import('./transports/mqtt.js').then(({ mqttTransport }) =>
      mqttTransport({
        url,
        ...(deviceId === undefined ? {} : { deviceId }),
        ...(authorizerName === undefined ? {} : { authorizerName }),
      }),
    );
    return loaded;
  };
  return {
    name: 'mqtt',
    needsHeartbeat: false,
    maxConnectionMs: undefined,
    minTokenValidityMs: MQTT_MIN_TOKEN_VALIDITY_MS,
    async connect(token, handlers, signal) {
      return (await load()).connect(token, handlers, signal);
    },
  };
}

/** The transport the options ask for, with its URL from `url` or from the client config. */
function transportFrom<S extends RealtimeSchema>(options: RealtimeClientOptions<S>): Transport {
  const transport = options.transport ?? 'websocket';
  if (typeof transport === 'object') return transport;
  let config: RealtimeClientConfig | undefined;
  if (options.config !== undefined) {
    try {
      config = parseClientConfig(options.config);
    } catch (cause) {
      throw new ConfigError(cause instanceof Error ? cause.message : 'Invalid client config.', { cause });
    }
  }
  if (transport === 'mqtt') {
    const url = options.url ?? config?.mqtt?.url;
    if (url === undefined) {
      throw new ConfigError(
        config === undefined
          ? '`transport: "mqtt"` needs `url` (wss://{iot-endpoint}/mqtt) or `config`.'
          : 'The client config has no `mqtt` endpoint: this stack was deployed without the MQTT channel.',
      );
    }
    return lazyMqttTransport(url, options.deviceId, config?.mqtt?.authorizerName);
  }
  const url = options.url ?? config?.websocket.url;
  if (url === undefined) throw new ConfigError('Pass `url` (the WebSocket URL) or `config` (the client config).');
  return websocketTransport(options.WebSocket === undefined ? { url } : { url, WebSocket: options.WebSocket });
}

class Client<S extends RealtimeSchema> implements RealtimeClient<S> {
  readonly #options: RealtimeClientOptions<S>;
  readonly #transport: Transport;
  readonly #events: Emitter<ClientEvents>;
  readonly #logger: RealtimeLogger;
  readonly #requests: RequestQueue;
  readonly #rooms = new Map<string, RoomHandle<BodyOf<S, 'message'>>>();
  readonly #ctx: ClientContext;
  readonly notifications: NotificationInbox<BodyOf<S, 'notification'>>;
  readonly announcements: AnnouncementFeed<BodyOf<S, 'announcement'>>;

  /** Leaves in flight, by room: a new handle's join waits for them. */
  readonly #leaving = new Map<string, Promise<void>>();
  readonly #roomHost = {
    removeRoom: (name: string, leaving: Promise<void>) => {
      this.#rooms.delete(name);
      const settled = leaving.finally(() => {
        if (this.#leaving.get(name) === settled) this.#leaving.delete(name);
      });
      this.#leaving.set(name, settled);
    },
    pendingLeave: (name: string) => this.#leaving.get(name),
  };

  #state: ConnectionState = 'idle';
  #connection: TransportConnection | undefined;
  /** Bumped on every connect attempt and close: callbacks of an older attempt see a stale number and stop. */
  #generation = 0;
  #attempt = 0;
  #abort: AbortController | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #lastSentAt = 0;
  #userId: string | undefined;
  /** A refused token is retried once with a fresh one before the refusal counts as permanent. */
  #authRetried = false;
  /** The next reconnect should not wait (a planned refresh or an expired token, not a failure). */
  #reconnectNow = false;
  /** The next token must be a new one, not the provider's cached one (a planned refresh). */
  #forceRefreshNext = false;
  #stableTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: RealtimeClientOptions<S>) {
    this.#options = options;
    this.#logger = options.logger ?? {};
    this.#transport = transportFrom(options);
    this.#events = new Emitter((event, error) => this.#listenerFailed(event, error));
    this.#requests = new RequestQueue({
      timeoutMs: options.requestTimeoutMs ?? CLIENT_DEFAULTS.requestTimeoutMs,
      maxQueued: options.offlineQueueSize ?? CLIENT_DEFAULTS.offlineQueueSize,
      isOpen: () => this.#state === 'open' && this.#connection !== undefined,
      isClosed: () => this.#state === 'closed',
      write: (frame) => this.#write(frame),
    });
    this.#ctx = this.#createContext();
    this.notifications = new NotificationInbox(this.#ctx);
    this.announcements = new AnnouncementFeed(
      this.#ctx,
      options.announcementsLookbackMs ?? CLIENT_DEFAULTS.announcementsLookbackMs,
    );
    // On the next microtask: listeners the app attaches right after creating the client see `connecting`.
    if (options.autoConnect !== false) queueMicrotask(() => this.connect());
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get transport(): string {
    return this.#transport.name;
  }

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void {
    this.#events.off(event, listener);
  }

  join(room: string, options?: { visibility?: RoomVisibility }): Room<BodyOf<S, 'message'>> {
    const existing = this.#rooms.get(room);
    if (existing !== undefined) return existing;
    const handle = new RoomHandle<BodyOf<S, 'message'>>(room, this.#ctx, this.#roomHost, options?.visibility);
    this.#rooms.set(room, handle);
    return handle;
  }

  room(name: string): Room<BodyOf<S, 'message'>> | undefined {
    return this.#rooms.get(name);
  }

  connect(): void {
    if (this.#state === 'connecting' || this.#state === 'open' || this.#state === 'reconnecting') return;
    this.#attempt = 0;
    this.#authRetried = false;
    void this.#open();
  }

  async ping(): Promise<number> {
    const started = Date.now();
    await this.#requests.request({ action: 'ping' }, { queue: false, resend: false });
    return Date.now() - started;
  }

  close(): void {
    this.#shutDown(undefined);
  }

  // --- the state machine ---

  async #open(): Promise<void> {
    const generation = ++this.#generation;
    this.#clearTimers();
    this.#setState('connecting');
    const abort = new AbortController();
    this.#abort = abort;
    const connectTimeoutMs = this.#options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs;
    let token: string;
    try {
      token = await this.#freshToken();
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#retryLater(error instanceof RealtimeClientError ? error : new TokenProviderError(String(error)));
      return;
    }
    if (generation !== this.#generation) return;
    let connection: TransportConnection;
    // A server that accepts TCP and never answers the upgrade (or a black-holed route) must not hold the client
    // in `connecting` for ever.
    const deadline = setTimeout(() => abort.abort(), connectTimeoutMs);
    try {
      connection = await this.#transport.connect(
        token,
        {
          frame: (frame) => {
            if (generation === this.#generation) this.#onFrame(frame);
          },
          closed: (info) => {
            if (generation !== this.#generation) return;
            this.#onClosed(new ConnectionError(`Connection lost: ${info.reason}`, { details: { code: info.code } }));
          },
          error: (error) => {
            if (generation === this.#generation)
              this.#report(
                error instanceof RealtimeClientError ? error : new ConnectionError(error.message, { cause: error }),
              );
          },
        },
        abort.signal,
      );
    } catch (error) {
      clearTimeout(deadline);
      if (generation !== this.#generation) return;
      if (error instanceof AuthenticationError) {
        if (!this.#authRetried) {
          // The token may have been revoked or rotated between getToken() and connect: one fresh try.
          this.#authRetried = true;
          this.#logger.warn?.('token refused; retrying once with a fresh token', { status: error.status });
          this.#reconnectNow = true;
          this.#retryLater(error);
          return;
        }
        this.#logger.error?.('token refused again: giving up until connect() is called', { status: error.status });
        this.#shutDown(error);
        return;
      }
      this.#retryLater(
        abort.signal.aborted
          ? new ConnectionError(`No connection within ${connectTimeoutMs} ms.`, { cause: error })
          : error instanceof RealtimeClientError
            ? error
            : new ConnectionError(String(error), { cause: error }),
      );
      return;
    }
    clearTimeout(deadline);
    if (generation !== this.#generation) {
      connection.close();
      return;
    }
    this.#connection = connection;
    this.#authRetried = false;
    this.#lastSentAt = Date.now();
    this.#stableTimer = setTimeout(() => {
      this.#attempt = 0;
    }, CLIENT_DEFAULTS.stableConnectionMs);
    this.#setState('open');
    // An `open` or `state` listener may have closed the client already.
    if (generation !== this.#generation) return;
    this.#logger.info?.(`connected (${this.#transport.name})`);
    this.#scheduleRefresh(token);
    this.#startHeartbeat();
    // Rooms first: their joins go out before queued sends, which wait for their room's join anyway.
    for (const room of this.#rooms.values()) room.connected();
    this.#requests.flush();
    void this.notifications.connected();
    void this.announcements.connected(Date.now());
  }

  /** A token from `getToken` with enough validity left for the transport; a second, forced call if the first
   * one will not do. */
  async #freshToken(): Promise<string> {
    const needMs = Math.max(1, this.#transport.minTokenValidityMs ?? 0);
    const wantMs = Math.max(needMs, this.#options.refreshMarginMs ?? CLIENT_DEFAULTS.refreshMarginMs);
    let forceRefresh = this.#authRetried || this.#forceRefreshNext;
    this.#forceRefreshNext = false;
    for (;;) {
      let token: unknown;
      try {
        token = await this.#options.getToken({ forceRefresh });
      } catch (error) {
        throw new TokenProviderError('getToken() failed.', { cause: error });
      }
      if (typeof token !== 'string' || token.length === 0) {
        throw new TokenProviderError('getToken() returned no token (is the user signed in?).');
      }
      const claims = decodeTokenClaims(token);
      if (claims === undefined) throw new TokenProviderError('getToken() returned something that is not a JWT.');
      const leftMs = typeof claims.exp === 'number' ? claims.exp * 1000 - Date.now() : Number.POSITIVE_INFINITY;
      // A token inside the refresh margin would be replaced at once: ask for a new one first (a provider that
      // caches until expiry returns the old one otherwise).
      if (leftMs < wantMs && !forceRefresh) {
        forceRefresh = true;
        continue;
      }
      if (leftMs < needMs) {
        throw new TokenProviderError(
          leftMs <= 0
            ? 'getToken({ forceRefresh: true }) returned an expired token.'
            : `getToken({ forceRefresh: true }) returned a token valid for ${Math.round(leftMs / 1000)} s; the ${this.#transport.name} channel needs ${Math.round(needMs / 1000)} s.`,
        );
      }
      if (typeof claims.sub === 'string') this.#userId = claims.sub;
      return token;
    }
  }

  #onClosed(error: RealtimeClientError): void {
    this.#connection = undefined;
    this.#clearTimers();
    this.#requests.disconnected();
    for (const room of this.#rooms.values()) room.disconnected();
    this.announcements.disconnected(Date.now());
    if (this.#state === 'closed') return;
    this.#logger.warn?.('connection lost', { reason: error.message });
    this.#retryLater(error);
  }

  #retryLater(error: RealtimeClientError): void {
    this.#clearTimers();
    const now = this.#reconnectNow;
    this.#reconnectNow = false;
    const delayMs = now
      ? 0
      : fullJitterDelay(
          this.#attempt,
          this.#options.reconnect?.initialDelayMs ?? CLIENT_DEFAULTS.initialDelayMs,
          this.#options.reconnect?.maxDelayMs ?? CLIENT_DEFAULTS.maxDelayMs,
        );
    this.#attempt++;
    if (!now) this.#report(error);
    // An `error` listener may have closed the client.
    if (this.#state === 'closed') return;
    this.#setState('reconnecting');
    this.#events.emit('reconnecting', { attempt: this.#attempt, delayMs, error });
    const generation = this.#generation;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (generation === this.#generation && this.#state === 'reconnecting') void this.#open();
    }, delayMs);
  }

  /** Replaces the connection now, with a fresh token (before a cut, or after `token_expired`). */
  #replaceConnection(reason: string): void {
    if (this.#state !== 'open') return;
    this.#logger.info?.(`reconnecting: ${reason}`);
    this.#reconnectNow = true;
    this.#forceRefreshNext = true;
    const connection = this.#connection;
    // Our own close: handled here, not by the transport's `closed` callback of a now-stale generation.
    this.#generation++;
    connection?.close();
    this.#onClosed(new ConnectionError(reason));
  }

  #shutDown(error: RealtimeClientError | undefined): void {
    if (this.#state === 'closed') return;
    this.#generation++;
    this.#clearTimers();
    this.#abort?.abort();
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.close();
    for (const room of this.#rooms.values()) room.disconnected();
    this.#requests.close(error);
    this.#setState('closed');
    this.#events.emit('closed', error);
  }

  #scheduleRefresh(token: string): void {
    const margin = this.#options.refreshMarginMs ?? CLIENT_DEFAULTS.refreshMarginMs;
    const now = Date.now();
    const deadlines: number[] = [];
    const exp = decodeTokenClaims(token)?.exp;
    if (typeof exp === 'number') deadlines.push(exp * 1000 - margin);
    if (this.#transport.maxConnectionMs !== undefined) deadlines.push(now + this.#transport.maxConnectionMs - margin);
    if (deadlines.length === 0) return;
    // A token shorter-lived than the margin would be replaced at once, again and again: then at half its life.
    const earliest = Math.min(...deadlines);
    const at = earliest > now + 1_000 ? earliest : now + Math.max(1_000, (earliest + margin - now) / 2);
    const arm = () => {
      const wait = at - Date.now();
      this.#refreshTimer = setTimeout(
        () => {
          this.#refreshTimer = undefined;
          if (Date.now() < at) arm();
          else this.#replaceConnection('token or connection about to expire');
        },
        Math.max(0, Math.min(wait, MAX_TIMER_MS)),
      );
    };
    arm();
  }

  #startHeartbeat(): void {
    if (!this.#transport.needsHeartbeat) return;
    const interval = this.#options.heartbeatIntervalMs ?? CLIENT_DEFAULTS.heartbeatIntervalMs;
    // Checked often enough that a ping goes out within a fifth of the interval of falling due.
    this.#heartbeatTimer = setInterval(
      () => {
        if (this.#state !== 'open' || Date.now() - this.#lastSentAt < interval) return;
        this.#requests.request({ action: 'ping' }, { queue: false, resend: false }).catch((error: unknown) => {
          if (this.#state !== 'open') return;
          // No pong: the connection is dead without having said so (a sleeping laptop, a lost network).
          this.#logger.warn?.('heartbeat failed; replacing the connection', { error: String(error) });
          this.#replaceConnection('heartbeat timed out');
        });
      },
      Math.max(1, Math.floor(interval / 5)),
    );
  }

  #clearTimers(): void {
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    if (this.#stableTimer !== undefined) clearTimeout(this.#stableTimer);
    this.#stableTimer = undefined;
    this.#reconnectTimer = undefined;
    this.#refreshTimer = undefined;
    this.#heartbeatTimer = undefined;
  }

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#events.emit('state', state, previous);
    // `reconnecting` and `closed` carry data and are emitted where it is known.
    if (state === 'connecting') this.#events.emit('connecting');
    else if (state === 'open') this.#events.emit('open');
  }

  // --- frames ---

  #write(frame: ClientFrame): void {
    const connection = this.#connection;
    if (connection === undefined) throw new ConnectionError('Not connected.');
    connection.send(frame);
    this.#lastSentAt = Date.now();
  }

  #onFrame(frame: ServerFrame): void {
    if (frame.type === 'error' && frame.code === 'token_expired') {
      // The service closes the connection after this frame; reconnect with a fresh token, keep requests.
      this.#requests.answer(frame);
      this.#replaceConnection('token expired');
      return;
    }
    if (this.#requests.answer(frame)) return;
    switch (frame.type) {
      case 'chat':
        this.#rooms.get(frame.room)?.chat(frame);
        return;
      case 'presence':
        this.#rooms.get(frame.room)?.presence(frame);
        return;
      case 'notification':
        this.notifications.notification(frame);
        return;
      case 'announcement':
        this.announcements.announcement(frame);
        return;
      case 'error':
        if (frame.room !== undefined && frame.code === 'room_closed') {
          // The backend closed a room this client is in: it fails for good, like a refused join.
          this.#rooms.get(frame.room)?.closedByService(frame);
        }
        this.#report(new RealtimeClientError(frame.code, frame.message, { details: { ...frame.details, frame } }));
        return;
      default:
        // An answer to a request that already timed out, or to another MQTT session of the same user.
        return;
    }
  }

  // --- helpers for the parts ---

  #createContext(): ClientContext {
    const client = this;
    return {
      request: (frame: ClientFrame, options?: RequestOptions) => client.#requests.request(frame, options),
      flush: () => client.#requests.flush(),
      get isOpen() {
        return client.#state === 'open' && client.#connection !== undefined;
      },
      get userId() {
        return client.#userId;
      },
      reportError: (error) => client.#report(error),
      listenerFailed: (event, error) => client.#listenerFailed(event, error),
      checkIncoming: (kind, body, frame) => client.#checkIncoming(kind, body, frame),
      checkOutgoing: (kind, body) => client.#checkOutgoing(kind, body),
      failRoomRequests: (room, error) =>
        client.#requests.failAll(error, (frame) => frame.action === 'send' && frame.room === room),
      tokenExpired: () => client.#replaceConnection('token expired'),
      logger: this.#logger,
      retryDelay: (attempt) =>
        fullJitterDelay(
          attempt,
          this.#options.reconnect?.initialDelayMs ?? CLIENT_DEFAULTS.initialDelayMs,
          this.#options.reconnect?.maxDelayMs ?? CLIENT_DEFAULTS.maxDelayMs,
        ),
    };
  }

  #parser(kind: BodyKind): BodyParser<unknown> | undefined {
    return this.#options.schemas?.[kind] as BodyParser<unknown> | undefined;
  }

  #checkIncoming(kind: BodyKind, body: JsonObject, frame: unknown): JsonObject | undefined {
    const parser = this.#parser(kind);
    if (parser === undefined) return body;
    try {
      return parseWith(parser, body) as JsonObject;
    } catch (cause) {
      this.#report(new SchemaError(kind, { cause, frame }));
      return undefined;
    }
  }

  #checkOutgoing(kind: BodyKind, body: JsonObject): void {
    const parser = this.#parser(kind);
    if (parser === undefined) return;
    try {
      parseWith(parser, body);
    } catch (cause) {
      throw new SchemaError(kind, { cause });
    }
  }

  #report(error: RealtimeClientError): void {
    this.#logger.debug?.(`error: ${error.code}`, { message: error.message });
    this.#events.emit('error', error);
  }

  #listenerFailed(event: string, error: unknown): void {
    this.#logger.error?.(`a listener of "${event}" threw`, { error: String(error) });
    if (event === 'error') return; // an `error` listener that throws would loop
    this.#events.emit('error', new ListenerError(event, error));
  }
}

/**
 * Creates a realtime client and (unless `autoConnect: false`) connects it.
 * @example
 * import { createRealtimeClient } from '@viba-realtime/client';
 * interface MyApp { message: { text: string }; notification: { title: string } }
 * const client = createRealtimeClient<MyApp>({
 *   url: 'ws://127.0.0.1:4000/local',
 *   getToken: async () => (await fetchAuthSession()).tokens?.idToken?.toString() ?? '',
 * });
 * const room = client.join('lobby');
 * room.on('message', (m) => console.log(m.from, m.body.text));
 * await room.send({ text: 'hello' });
 */
export function createRealtimeClient<S extends RealtimeSchema = RealtimeSchema>(
  options: RealtimeClientOptions<S>,
): RealtimeClient<S> {
  return new Client<S>(options);
}
