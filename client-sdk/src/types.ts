/**
 * The SDK's public types: options, the schema map, events, the client and room handles.
 */
import type { JsonObject, RealtimeClientConfig, RoomVisibility } from '@viba-realtime/protocol';
import type { RealtimeClientError } from './errors.js';
import type { Transport } from './transports/transport.js';

/**
 * The app's payload types, declared once: `createRealtimeClient<MyApp>(...)` types every room's
 * `send`/`message`, `notification` and `announcement` from it. Each defaults to any JSON object.
 * @example
 * interface MyApp {
 *   message: { text: string } | { image: string };
 *   notification: { kind: 'mention'; room: string };
 *   announcement: { title: string };
 * }
 */
export interface RealtimeSchema {
  message?: JsonObject;
  notification?: JsonObject;
  announcement?: JsonObject;
}

/** The body type of one kind of a schema map, `JsonObject` when the app did not declare it. */
export type BodyOf<S extends RealtimeSchema, K extends keyof RealtimeSchema> = S[K] extends JsonObject
  ? S[K]
  : JsonObject;

/** A runtime check of a body: a function that returns the typed value or throws, or any object with such a
 * `parse` method (a zod or valibot schema, say). */
export type BodyParser<T> = ((value: unknown) => T) | { parse(value: unknown): T };

/** Connection states. `idle`: created with `autoConnect: false` and not connected yet. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What the client asks of `getToken`. */
export interface TokenRequest {
  /** The cached token will not do (it was refused, or expires too soon): fetch a new one. */
  forceRefresh: boolean;
}

/** Logs of the SDK (reconnects, dropped connections, errors). Default: none. `console` fits. */
export interface RealtimeLogger {
  debug?(message: string, data?: Record<string, unknown>): void;
  info?(message: string, data?: Record<string, unknown>): void;
  warn?(message: string, data?: Record<string, unknown>): void;
  error?(message: string, data?: Record<string, unknown>): void;
}

/** A WebSocket constructor: the browser's and React Native's global, or `ws`'s default export on Node. Typed
 * loosely on purpose (`ws` declares overloads and its own event types); the SDK uses only {@link WebSocketLike}. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

/** What the SDK uses of a WebSocket (the WHATWG interface, which `ws` implements too). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
}

/** Options of {@link createRealtimeClient}. Only `url` and `getToken` are required. */
export interface RealtimeClientOptions<S extends RealtimeSchema = RealtimeSchema> {
  /** WebSocket: `wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}` (emulator: `ws://127.0.0.1:4000/local`).
   * MQTT: `wss://{iot-endpoint}/mqtt` or `mqtts://{iot-endpoint}:8883` (emulator: `ws://127.0.0.1:4000/mqtt`).
   * Optional with `config`, which has both. */
  url?: string;
  /**
   * The deployment's client config: the stack's `ClientConfig` output (a JSON file your build ships) or the
   * emulator's `GET /dev/client-config`. Supplies `url` for the chosen transport and MQTT's authorizer name.
   */
  config?: RealtimeClientConfig;
  /**
   * Returns the user's current Cognito ID or access token. Called before **every** connect. `forceRefresh` is
   * true when the last token was refused or expires too soon for the transport: then fetch a new one, not a
   * cached one. Amplify: `async ({ forceRefresh }) => (await fetchAuthSession({ forceRefresh })).tokens?.idToken?.toString() ?? ''`.
   */
  getToken: (request: TokenRequest) => string | Promise<string>;
  /** `websocket` (default), `mqtt` (IoT Core; needs the `mqtt` package), or a {@link Transport} of your own. */
  transport?: 'websocket' | 'mqtt' | Transport;
  /** WebSocket implementation. @default globalThis.WebSocket (Node 20 has none: pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** MQTT: a device suffix for the client id `{sub}.{suffix}`, stable per device if the app wants IoT to
   * replace a device's older session. @default random per client */
  deviceId?: string;
  /** Connect on creation. @default true */
  autoConnect?: boolean;
  /** Runtime checks of bodies, applied to what is sent and what is received. */
  schemas?: {
    message?: BodyParser<BodyOf<S, 'message'>>;
    notification?: BodyParser<BodyOf<S, 'notification'>>;
    announcement?: BodyParser<BodyOf<S, 'announcement'>>;
  };
  /** Reconnect backoff: full jitter, `random(0, min(maxDelayMs, initialDelayMs * 2^attempt))`. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** WebSocket heartbeat: a `ping` after this long without a frame sent (API Gateway's idle timer counts what
   * the client sends). @default 240000 (4 min, well inside API Gateway's 10-minute idle timeout) */
  heartbeatIntervalMs?: number;
  /** No answer to a request (or to a heartbeat) within this long: the request fails with `timeout` (the
   * heartbeat: the connection is considered dead and replaced). @default 10000 */
  requestTimeoutMs?: number;
  /** Give up a connect attempt (and retry with backoff) after this long. @default 15000 */
  connectTimeoutMs?: number;
  /** Reconnect this long before the token expires or the service's connection cut (API Gateway: 2 h), so it
   * never happens mid-use. @default 60000 */
  refreshMarginMs?: number;
  /** Sends (and other requests) made while disconnected wait in a queue of at most this many. @default 100 */
  offlineQueueSize?: number;
  /** Catch up on missed announcements this far back on the first connect, ms (0: none). @default 0 */
  announcementsLookbackMs?: number;
  logger?: RealtimeLogger;
}

/** A chat message, as delivered to `room.on('message')` and returned by `room.history()`. */
export interface ChatMessage<Body extends JsonObject = JsonObject> {
  /** Server id. */
  id: string;
  room: string;
  /** The sender's Cognito `sub` (set by the server from the token; `backend` for the backend publisher). */
  from: string;
  /** The room's sequence number: strictly increasing. */
  seq: number;
  /** Server time it was stored, epoch ms. */
  ts: number;
  body: Body;
  /** The sender's client id of the send. */
  clientId: string;
}

/** Someone joined or left a room. */
export interface PresenceEvent {
  room: string;
  user: string;
  state: 'joined' | 'left';
  ts: number;
}

/** A notification for the signed-in user. */
export interface Notification<Body extends JsonObject = JsonObject> {
  id: string;
  ts: number;
  body: Body;
  read: boolean;
}

/** An announcement to everyone or to one of the user's groups. */
export interface Announcement<Body extends JsonObject = JsonObject> {
  id: string;
  ts: number;
  /** An admin's `sub`, or `backend`. */
  from: string;
  /** The group it was for; absent for everyone. */
  group?: string;
  body: Body;
}

/** What a `send` resolves to once the service stored the message. */
export interface SendResult {
  id: string;
  seq: number;
  ts: number;
  /** The client id used (pass it again to retry idempotently). */
  clientId: string;
  /** True when this client id had already been stored (a retry): nothing new was sent. */
  duplicate: boolean;
}

/** A page of history, ascending `seq`. */
export interface HistoryPage<Body extends JsonObject = JsonObject> {
  messages: ChatMessage<Body>[];
  /** Pass as the next call's option to page on in the same direction; absent at the end. */
  next?: { after: number } | { before: number };
}

/** Status of a room subscription. `joining`: first join in flight; `joined`: receiving; `rejoining`: the
 * connection was lost, it joins again (and catches up) when it is back; `failed`: refused for good (see
 * `room.error`); `left`. */
export type RoomStatus = 'joining' | 'joined' | 'rejoining' | 'failed' | 'left';

/** Events of a room handle. */
export interface RoomEvents<Body extends JsonObject> {
  message: (message: ChatMessage<Body>) => void;
  presence: (event: PresenceEvent) => void;
  status: (status: RoomStatus, error?: RealtimeClientError) => void;
  error: (error: RealtimeClientError) => void;
}

/** A joined room. */
export interface Room<Body extends JsonObject = JsonObject> {
  readonly name: string;
  readonly status: RoomStatus;
  /** Why the room `failed`. */
  readonly error: RealtimeClientError | undefined;
  /** The highest `seq` delivered to `message` listeners (0 before any). */
  readonly lastSeq: number;
  /** The room's visibility, once joined. */
  readonly visibility: RoomVisibility | undefined;
  /** Resolves once joined; rejects if the join was refused for good or the room was left first. */
  ready(): Promise<void>;
  /**
   * Sends a message; resolves when it is stored. While disconnected it waits in the offline queue and is
   * sent once after reconnect. Retrying with the same `clientId` never stores it twice.
   */
  send(body: Body, options?: { clientId?: string }): Promise<SendResult>;
  /** Stored messages: newest page by default, `before` a seq backward, `after` a seq forward. */
  history(options?: { before?: number; after?: number; limit?: number }): Promise<HistoryPage<Body>>;
  on<E extends keyof RoomEvents<Body>>(event: E, listener: RoomEvents<Body>[E]): () => void;
  off<E extends keyof RoomEvents<Body>>(event: E, listener: RoomEvents<Body>[E]): void;
  /** Stops receiving the room (membership of a private room is kept). */
  leave(): Promise<void>;
}

/** Events of the client. */
export interface ClientEvents {
  /** Every state change. */
  state: (state: ConnectionState, previous: ConnectionState) => void;
  connecting: () => void;
  open: () => void;
  /** The connection was lost (or is being replaced before a cut); the next attempt is in `delayMs`. */
  reconnecting: (info: { attempt: number; delayMs: number; error?: RealtimeClientError }) => void;
  /** Closed by `close()` (no error) or for good on a permanent error (`unauthorized`). */
  closed: (error?: RealtimeClientError) => void;
  /** Errors that do not stop the client: a failed connect, a listener that threw, a body that failed its schema. */
  error: (error: RealtimeClientError) => void;
}

/** Events of `client.notifications`. */
export interface NotificationEvents<Body extends JsonObject> {
  /** A new notification, live or caught up from the inbox after a reconnect (each id once). */
  notification: (notification: Notification<Body>) => void;
  /** The unread count changed. */
  unread: (count: number) => void;
}

/** The signed-in user's notification inbox. */
export interface Notifications<Body extends JsonObject = JsonObject> {
  /** Unread notifications in the whole inbox, as last reported by the service (undefined before the first
   * connect). */
  readonly unreadCount: number | undefined;
  /** A page of the inbox, newest first. */
  list(options?: { before?: string; limit?: number; unreadOnly?: boolean }): Promise<{
    notifications: Notification<Body>[];
    unread: number;
    next?: { before: string };
  }>;
  /** Marks notifications read; resolves to the unread count left. */
  markRead(ids: string[]): Promise<number>;
  markAllRead(): Promise<number>;
  on<E extends keyof NotificationEvents<Body>>(event: E, listener: NotificationEvents<Body>[E]): () => void;
  off<E extends keyof NotificationEvents<Body>>(event: E, listener: NotificationEvents<Body>[E]): void;
}

/** Events of `client.announcements`. */
export interface AnnouncementEvents<Body extends JsonObject> {
  /** A new announcement, live or caught up after a reconnect (each id once). */
  announcement: (announcement: Announcement<Body>) => void;
}

/** Announcements to everyone and to the user's groups. */
export interface Announcements<Body extends JsonObject = JsonObject> {
  /** Stored announcements (kept 7 days), oldest first, from `since` (epoch ms) or `after` an id. */
  since(options?: { since?: number; after?: string; limit?: number }): Promise<{
    announcements: Announcement<Body>[];
    next?: { after: string };
  }>;
  /**
   * Announces to everyone, or to one Cognito `group`. Only users in the `admin` group may (others get
   * `forbidden`); backends use the backend publisher instead. Retrying with the same `clientId` announces once.
   */
  announce(body: Body, options?: { group?: string; clientId?: string }): Promise<{ id: string; clientId: string }>;
  on<E extends keyof AnnouncementEvents<Body>>(event: E, listener: AnnouncementEvents<Body>[E]): () => void;
  off<E extends keyof AnnouncementEvents<Body>>(event: E, listener: AnnouncementEvents<Body>[E]): void;
}

/** The realtime client. */
export interface RealtimeClient<S extends RealtimeSchema = RealtimeSchema> {
  readonly state: ConnectionState;
  /** The transport's name: `websocket` or `mqtt`. */
  readonly transport: string;
  /** Joins a room, or returns the handle already joined. The handle rejoins and catches up by itself after
   * every reconnect. */
  join(room: string, options?: { visibility?: RoomVisibility }): Room<BodyOf<S, 'message'>>;
  /** The handle of a room joined (and not left), if any. */
  room(name: string): Room<BodyOf<S, 'message'>> | undefined;
  readonly notifications: Notifications<BodyOf<S, 'notification'>>;
  readonly announcements: Announcements<BodyOf<S, 'announcement'>>;
  /** Connects (again) after `autoConnect: false` or after the client closed on a permanent error. */
  connect(): void;
  /** Measures a round trip to the service, ms. */
  ping(): Promise<number>;
  /** Closes the connection and stops reconnecting. Pending requests reject with `client_closed`. */
  close(): void;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
}
