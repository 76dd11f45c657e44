/**
 * The admin API's wire shapes: what `GET /_admin/api/...` answers and `/_admin/events` streams. Shared by the
 * server (./api.ts) and the console page (`local/console/`), which imports them as types only, so this module
 * must stay free of Node imports.
 */

/** Where the admin API lives on the emulator's HTTP port. */
export const ADMIN_PREFIX = '/_admin';
/** The JSON API's prefix. */
export const ADMIN_API_PREFIX = `${ADMIN_PREFIX}/api`;
/** The WebSocket that streams {@link AdminEvent}s (first the recent ones, then each as it happens). */
export const ADMIN_EVENTS_PATH = `${ADMIN_PREFIX}/events`;
/** The `User-Agent` of the connections the console opens to act as a user, so the tables can tell them apart. */
export const CONSOLE_USER_AGENT = 'viba-realtime-console';

/** A log level of the emulator (`silent` never reaches the event stream). */
export type AdminEventLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * What an event is about, for filtering. `refusal` is a connect or an operation the service refused (401 / 403
 * from the WebSocket authorizer, an IoT authorizer denial, an IoT policy denial); `gone` a `@connections` post
 * that found the connection gone (410: the handlers clean the connection up); `retry` a post answered 429 or 5xx
 * (the delivery retries it); `limit` an API Gateway limit closing a connection; `fault` a fault-injection rule
 * firing.
 */
export type AdminEventCategory =
  | 'connect'
  | 'refusal'
  | 'disconnect'
  | 'route'
  | 'delivery'
  | 'gone'
  | 'retry'
  | 'limit'
  | 'fault'
  | 'error'
  | 'mqtt'
  | 'queue'
  | 'token'
  | 'admin'
  | 'other';

/** Every {@link AdminEventCategory}, in the order the console's filter lists them. */
export const ADMIN_EVENT_CATEGORIES: readonly AdminEventCategory[] = [
  'connect',
  'refusal',
  'disconnect',
  'route',
  'delivery',
  'gone',
  'retry',
  'limit',
  'fault',
  'error',
  'mqtt',
  'queue',
  'token',
  'admin',
  'other',
];

/** One line of the emulator's log, with what could be read out of it. */
export interface AdminEvent {
  /** Increases by one per event; `GET /_admin/api/events?after={id}` pages on it. */
  id: number;
  /** Epoch ms by the emulator's clock. */
  ts: number;
  level: AdminEventLevel;
  /** The log line's tag: `CONNECT`, `SEND`, `POST`, `DISCONN`, `IOTDENY`, ... */
  kind: string;
  category: AdminEventCategory;
  /** The log line without its time and tag. */
  text: string;
  /** A WebSocket connection id, or `mqtt:{clientId}` for an MQTT client. */
  connectionId?: string;
  /** The user (`sub` or username) when the line names one. */
  user?: string;
  room?: string;
  /** An HTTP or route status when the line has one (`101`, `403`, `410`, ...). */
  status?: string;
  /** Why something was refused or failed, in words. */
  reason?: string;
}

/** A live connection on either channel. */
export interface ConnectionView {
  /** The WebSocket connection id, or `mqtt:{clientId}`. */
  connectionId: string;
  channel: 'ws' | 'mqtt';
  /** MQTT only. */
  clientId?: string;
  /** The user's `sub`. */
  user: string;
  username?: string;
  groups: string[];
  /** Epoch ms. */
  connectedAt: number;
  /** Epoch ms of the client's last message (WebSocket) or publish / subscribe (MQTT). */
  lastActiveAt?: number;
  /** Rooms the connection is subscribed to. */
  rooms: string[];
  /** Epoch seconds: the token's `exp` (WebSocket), or when IoT cuts the connection (MQTT). */
  tokenExp?: number;
  /** MQTT only: `tcp` or `ws`, and the protocol (`3.1.1` or `5`). */
  transport?: string;
  protocol?: string;
  sourceIp?: string;
  userAgent?: string;
  /** Opened by the console to act as the user. */
  console: boolean;
}

/** A room as stored. */
export interface RoomSummary {
  room: string;
  visibility: 'public' | 'private';
  owner: string;
  /** Epoch ms. */
  createdAt: number;
  lastSeq: number;
  closed: boolean;
}

/** A room with its members, who is online in it, and its latest messages. */
export interface RoomDetail extends RoomSummary {
  members: string[];
  /** Users with at least one connection subscribed to the room. */
  online: { user: string; connectionIds: string[] }[];
  /** The newest messages, ascending `seq`. */
  messages: { seq: number; id: string; from: string; ts: number; body: Record<string, unknown> }[];
}

/** The emulator's adjustable clock. */
export interface ClockView {
  /** Epoch ms by the emulator's clock. */
  now: number;
  /** How far the clock was moved ahead of its source, ms. */
  offsetMs: number;
}

/**
 * The faults panel's data. `rules`: the emulator runs with fault injection (`emulator.faults`); its rules as it
 * lists them (input, `fired`, `active`). `post-faults`: fault injection is off (the emulator's `faults` option);
 * only the gateway's per-connection `@connections` POST faults are available.
 */
export interface FaultsView {
  mode: 'rules' | 'post-faults';
  rules: Record<string, unknown>[];
  /** Every target a rule may name, with the faults it can have (`dynamodb: ['throttle', ...]`). */
  targets: Record<string, readonly string[]>;
}

/** Endpoints of the running emulator, as the banner prints them. */
export interface EmulatorInfo {
  url: string;
  httpUrl: string;
  connectionsEndpoint: string;
  mqttUrl?: string;
  mqttWsUrl?: string;
  fanoutQueueUrl?: string;
  tableName: string;
  tokenUse: string;
}

/** `GET /_admin/api/state`. */
export interface StateView {
  emulator: EmulatorInfo;
  clock: ClockView;
  connections: ConnectionView[];
  rooms: RoomSummary[];
  faults: FaultsView;
}

/** Every error answer of the admin API. */
export interface AdminErrorBody {
  /** Stable: `bad_request`, `not_found`, `forbidden`, `conflict`, `unavailable`, `timeout`, or a protocol error
   * code (`invalid_room`, `unknown_room`, ...) passed through from the publisher or a handler. */
  error: string;
  message: string;
}
