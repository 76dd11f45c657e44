/**
 * The console's event stream: every line the emulator logs, kept in a ring buffer as an {@link AdminEvent} and
 * handed to subscribers (the `/_admin/events` WebSocket). It is fed by teeing the {@link EmulatorLogger}, so
 * the gateway, the broker, IoT Core and the queue report here without knowing about the console. What a line is
 * about (connection, user, room, status) comes from the structured fields a caller passes, else from the
 * line's text, whose shapes are fixed per tag (see `docs/EMULATOR.md`).
 */
import { mqttConnectionId, subOfClientId } from '@viba-realtime/lambdas';
import { keys, parseTopic, WS_ROUTES } from '@viba-realtime/protocol';
import type { EmulatorLogger, LogFields } from '../log.js';
import type { Clock } from '../time.js';
import type { AdminEvent, AdminEventCategory, AdminEventLevel } from './types.js';

/** How many events the bus keeps for a console that opens later. @default */
export const EVENT_BUFFER_SIZE = 2000;

/** A listener of new events. */
export type AdminEventListener = (event: AdminEvent) => void;

/**
 * Keeps the latest events and tells subscribers about new ones. A listener that throws is dropped, so a broken
 * subscriber never breaks the logging of the code that emitted the line.
 * @example
 * const bus = new AdminEventBus({ clock });
 * const stop = bus.subscribe((event) => console.log(event.kind, event.user));
 */
/** A line as logged; described (parsed into an {@link AdminEvent}) only when someone reads or watches it. */
interface LoggedLine {
  id: number;
  ts: number;
  level: AdminEventLevel;
  kind: string;
  text: string;
  fields: LogFields | undefined;
  event?: AdminEvent;
}

function described(line: LoggedLine): AdminEvent {
  line.event ??= { id: line.id, ts: line.ts, ...describeLine(line.level, line.kind, line.text, line.fields) };
  return line.event;
}

export class AdminEventBus {
  readonly #clock: Clock;
  readonly #size: number;
  /**
   * A ring: a busy emulator logs thousands of lines a second, and shifting an array per line would cost. Lines
   * are kept raw: the console is on by default, and parsing every line of the hot paths for a page nobody has
   * open would cost too.
   */
  readonly #events: (LoggedLine | undefined)[];
  readonly #listeners = new Set<AdminEventListener>();
  #nextId = 1;

  constructor(options: { clock: Clock; size?: number }) {
    this.#clock = options.clock;
    this.#size = options.size ?? EVENT_BUFFER_SIZE;
    this.#events = new Array(this.#size);
  }

  /** Records one log line as an event. */
  push(level: AdminEventLevel, kind: string, text: string, fields?: LogFields): void {
    const line: LoggedLine = { id: this.#nextId++, ts: this.#clock(), level, kind, text, fields };
    this.#events[(line.id - 1) % this.#size] = line;
    if (this.#listeners.size === 0) return;
    const event = described(line);
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        this.#listeners.delete(listener);
      }
    }
  }

  /**
   * Kept events, oldest first: with `after`, the first `limit` with a higher id (to page forward); without, the
   * newest `limit`.
   */
  recent(options: { after?: number; limit?: number } = {}): AdminEvent[] {
    const newest = this.#nextId - 1;
    const oldest = Math.max(1, newest - this.#size + 1);
    const limit = Math.min(options.limit ?? this.#size, this.#size);
    const from =
      options.after === undefined ? Math.max(oldest, newest - limit + 1) : Math.max(oldest, options.after + 1);
    const to = Math.min(newest, from + limit - 1);
    const events: AdminEvent[] = [];
    for (let id = from; id <= to; id++) {
      const line = this.#events[(id - 1) % this.#size];
      if (line) events.push(described(line));
    }
    return events;
  }

  /** Calls `listener` for every event from now on; returns the function that stops it. */
  subscribe(listener: AdminEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/**
 * A logger that writes to `inner` as before and records every line, whatever `inner`'s level, on `bus`: the
 * console shows what `--log-level warn` hides from the terminal.
 */
export function teeLogger(inner: EmulatorLogger, bus: AdminEventBus): EmulatorLogger {
  return {
    // Callers skip building a line only when nobody wants it; the bus wants every level.
    enabled: () => true,
    line(level, kind, text, fields) {
      bus.push(level, kind, text, fields);
      inner.line(level, kind, text, fields);
    },
  };
}

/** The tags of the WebSocket routes' lines (`SEND`, `JOIN`, `MARKREAD`, `DEFAULT`, ...): see the gateway's logRoute. */
const ROUTE_KINDS: ReadonlySet<string> = new Set(
  WS_ROUTES.filter((r) => r.routeKey !== '$connect' && r.routeKey !== '$disconnect').map((r) =>
    r.routeKey.toUpperCase().replace('$', ''),
  ),
);

const REFUSAL_REASONS: Record<string, string> = {
  '401': 'no token: the authorizer threw Unauthorized (401)',
  '403': 'the authorizer denied: a Deny policy for an invalid, expired or wrong-use token (403)',
  '500': 'the authorizer or $connect failed (500)',
};

type Described = Omit<AdminEvent, 'id' | 'ts'>;

/** A user field from the log, where `-` means "not known". */
function known(value: string | undefined): string | undefined {
  return value === undefined || value === '-' || value === '' ? undefined : value;
}

function gatewayLine(text: string): { connectionId?: string; user?: string; rest: string } {
  const [connectionId, user, ...rest] = text.split(' ');
  return {
    ...(known(connectionId) ? { connectionId } : {}),
    ...(known(user) ? { user } : {}),
    rest: rest.join(' '),
  };
}

function deliveryCategory(status: string | undefined): AdminEventCategory {
  if (status === '200') return 'delivery';
  if (status === '410') return 'gone';
  if (status === '429' || status?.startsWith('5')) return 'retry';
  return 'error';
}

/** Reads what a log line is about. Lines it does not know are kept as `other`, with their text. */
export function describeLine(level: AdminEventLevel, kind: string, text: string, fields?: LogFields): Described {
  const base: Described = { level, kind, category: 'other', text };
  const parsed = parseLine(level, kind, text);
  const merged: Described = { ...base, ...parsed };
  // Structured fields are what the caller knew for sure; they win over what the text suggested.
  if (fields?.connectionId) merged.connectionId = fields.connectionId;
  if (known(fields?.user)) merged.user = fields?.user;
  if (fields?.room) merged.room = fields.room;
  if (fields?.status !== undefined) merged.status = String(fields.status);
  return merged;
}

function parseLine(level: AdminEventLevel, kind: string, text: string): Partial<Described> {
  switch (kind) {
    case 'CONNECT': {
      // `{id} {user} {status} {ms}ms`, or `{id} {user} client left during $connect {ms}ms`
      const { connectionId, user, rest } = gatewayLine(text);
      const status = rest.split(' ')[0];
      const ids = { ...(connectionId ? { connectionId } : {}), ...(user ? { user } : {}) };
      if (status === '101') return { ...ids, category: 'connect', status };
      if (status && /^\d{3}$/.test(status)) {
        const reason = REFUSAL_REASONS[status] ?? `$connect answered ${status}`;
        return { ...ids, category: status.startsWith('5') ? 'error' : 'refusal', status, reason };
      }
      return { ...ids, category: 'disconnect', reason: rest.replace(/ \d+ms$/, '') };
    }
    case 'DISCONN': {
      // `{id} {user} {code} '{reason}' -> {status} {ms}ms`
      const { connectionId, user, rest } = gatewayLine(text);
      const close = rest.split(' -> ')[0];
      return {
        ...(connectionId ? { connectionId } : {}),
        ...(user ? { user } : {}),
        category: level === 'error' ? 'error' : 'disconnect',
        ...(close ? { reason: `closed ${close}` } : {}),
      };
    }
    case 'POST':
    case 'GET':
    case 'DELETE': {
      // `{id} {user}[ {bytes}B] {status}` (the `@connections` API)
      const { connectionId, user, rest } = gatewayLine(text);
      const status = rest.split(' ').at(-1);
      const ids = { ...(connectionId ? { connectionId } : {}), ...(user ? { user } : {}) };
      if (kind === 'POST')
        return {
          ...ids,
          category: deliveryCategory(status),
          ...(status ? { status } : {}),
          ...(status === '410' ? { reason: 'connection gone: the handler removes it (410 cleanup)' } : {}),
          ...(status === '429' || status?.startsWith('5')
            ? { reason: `answered ${status}: the delivery retries` }
            : {}),
        };
      if (kind === 'DELETE') return { ...ids, category: 'disconnect', ...(status ? { status } : {}) };
      return { ...ids, category: 'other', ...(status ? { status } : {}) };
    }
    case 'LIMIT': {
      const { connectionId, user, rest } = gatewayLine(text);
      return {
        ...(connectionId ? { connectionId } : {}),
        ...(user ? { user } : {}),
        category: 'limit',
        reason: rest,
      };
    }
    case 'ERROR':
      return { category: 'error' };
    case 'IOTAUTH': {
      // `{clientId} denied by the authorizer` | `{clientId} refused: ...` | `{clientId} refresh refused: ...`
      const [clientId = '', ...rest] = text.split(' ');
      const words = rest.join(' ');
      const refused = /denied|refused/.test(words);
      return {
        ...mqttIds(clientId),
        category: refused ? 'refusal' : 'mqtt',
        ...(refused ? { reason: `IoT authorizer: ${words}` } : {}),
      };
    }
    case 'IOTDENY': {
      // `{clientId} {action} {resource} ({why})`: an IoT policy denial
      const [clientId = '', action = '', ...rest] = text.split(' ');
      const resource = rest.join(' ');
      const topic = /:topic(?:filter)?\/(.+?)(?: \(|$)/.exec(resource)?.[1];
      const room = topic ? roomOfTopic(topic) : undefined;
      return {
        ...mqttIds(clientId),
        category: 'refusal',
        reason: `IoT policy denied ${action} ${resource}`.trim(),
        ...(room ? { room } : {}),
      };
    }
    case 'MQTT':
      return parseMqtt(text);
    case 'IOTDATA': {
      // `publish {topic} qos{n} {bytes}B -> {receivers}` | `DeleteConnection {clientId}: disconnected`
      const publish = /^publish (\S+) /.exec(text);
      if (publish?.[1]) {
        const topic = parseTopic(publish[1]);
        const user = topic && 'sub' in topic ? topic.sub : undefined;
        const room = topic && 'room' in topic ? topic.room : undefined;
        return { category: 'delivery', ...(user ? { user } : {}), ...(room ? { room } : {}) };
      }
      const deleted = /^DeleteConnection (\S+):/.exec(text);
      if (deleted?.[1]) return { ...mqttIds(deleted[1]), category: 'disconnect' };
      return { category: level === 'warn' || level === 'error' ? 'error' : 'other' };
    }
    case 'IOTRULE':
      return { category: level === 'warn' || level === 'error' ? 'error' : 'route' };
    case 'SQS':
      return { category: level === 'error' ? 'error' : 'queue' };
    case 'TOKEN': {
      const sub = text.split(' ')[0];
      return { category: 'token', ...(level === 'debug' && sub ? { user: sub } : {}) };
    }
    case 'FAULT':
      return parseFault(text);
    case 'ADMIN':
      // The console refusing a request (another origin, a foreign Host) is a refusal like the gateway's.
      return text.startsWith('refused ')
        ? { category: 'refusal', reason: text.slice(text.indexOf(': ') + 2) }
        : { category: level === 'error' ? 'error' : 'admin' };
    default:
      if (ROUTE_KINDS.has(kind)) {
        // `{id} {user} {status} {ms}ms`
        const { connectionId, user, rest } = gatewayLine(text);
        const status = rest.split(' ')[0];
        return {
          ...(connectionId ? { connectionId } : {}),
          ...(user ? { user } : {}),
          category: level === 'error' ? 'error' : 'route',
          ...(status ? { status } : {}),
        };
      }
      return { category: level === 'error' ? 'error' : 'other' };
  }
}

function mqttIds(clientId: string): Pick<AdminEvent, 'connectionId' | 'user'> {
  if (!clientId) return {};
  return { connectionId: mqttConnectionId(clientId), user: subOfClientId(clientId) };
}

/** Partition-key prefixes that name a room (room, membership and subscription items; messages), from the
 * table layout rather than a copy of it. */
const ROOM_PARTITION_PREFIXES = [keys.room('').pk, keys.messagesPrefix('').pk];

function roomOfPartitionKey(pk: string): string | undefined {
  const prefix = ROOM_PARTITION_PREFIXES.find((p) => pk.startsWith(p) && pk.length > p.length);
  return prefix === undefined ? undefined : pk.slice(prefix.length);
}

function roomOfTopic(topic: string): string | undefined {
  const parsed = parseTopic(topic);
  return parsed && 'room' in parsed ? parsed.room : undefined;
}

/** A fault-injection rule firing (`local/src/faults/`): `{id} {target} {fault} #{n} {what it hit}`. */
function parseFault(text: string): Partial<Described> {
  const [id = '', target = '', fault = '', , ...hit] = text.split(' ');
  const described: Partial<Described> = { category: 'fault', reason: `rule ${id}: ${target} ${fault}` };
  if (target === 'connections' && hit[1]) described.connectionId = hit[1];
  if (target === 'dynamodb') {
    const room = roomOfPartitionKey(hit[1] ?? '');
    if (room) described.room = room;
  }
  if (target === 'iot-publish' && hit[0]) {
    const topic = parseTopic(hit[0]);
    if (topic && 'sub' in topic) described.user = topic.sub;
    if (topic && 'room' in topic) described.room = topic.room;
  }
  return described;
}

/** The broker's lines (`local/src/broker/connection.ts`). */
function parseMqtt(text: string): Partial<Described> {
  const connect = /^CONNECT (\S+) (.*)$/.exec(text);
  if (connect?.[1]) {
    const refused = connect[2]?.startsWith('refused');
    return {
      ...mqttIds(connect[1]),
      category: refused ? 'refusal' : 'connect',
      ...(refused ? { reason: `MQTT CONNECT ${connect[2]}` } : {}),
    };
  }
  const disconnect = /^DISCONNECT (\S+) (\S+)/.exec(text);
  if (disconnect?.[1]) return { ...mqttIds(disconnect[1]), category: 'disconnect', reason: disconnect[2] ?? '' };
  const client = /^client (\S+) (.*)$/.exec(text);
  if (client?.[1]) {
    const rest = client[2] ?? '';
    const denied = rest.endsWith('not authorized');
    const topic = /^(?:PUBLISH|SUBSCRIBE) (\S+)/.exec(rest)?.[1];
    const room = topic ? roomOfTopic(topic) : undefined;
    return {
      ...mqttIds(client[1]),
      category: denied ? 'refusal' : 'mqtt',
      ...(denied ? { reason: rest } : {}),
      ...(room ? { room } : {}),
    };
  }
  return { category: 'mqtt' };
}
