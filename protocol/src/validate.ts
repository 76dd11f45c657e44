/**
 * Runtime validation of client frames. Zero dependencies so that the browser SDK can share it.
 * Every failure is a {@link ValidationError} whose code names the problem.
 */
import { ValidationError } from './errors.js';
import {
  type AnnouncementsFrame,
  CLIENT_ACTIONS,
  type ClientAction,
  type ClientFrame,
  type HistoryFrame,
  type InboxFrame,
  type JoinFrame,
  type JsonObject,
} from './frames.js';
import { APIGW_LIMITS, CLIENT_ID_PATTERN, IOT_LIMITS, LIMITS, ROOM_NAME_PATTERN } from './limits.js';
import { GROUP_NAME_PATTERN, TOPIC_SUB_PATTERN } from './topics.js';

const encoder = /* @__PURE__ */ new TextEncoder();

/** UTF-8 byte length of a string. */
export function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isClientAction(value: unknown): value is ClientAction {
  return typeof value === 'string' && (CLIENT_ACTIONS as readonly string[]).includes(value);
}

/** What of a bad value an error frame may echo: short strings and finite numbers only, never the
 * client's arbitrary JSON (which could be large or carry markup into someone's logs viewer). */
function echo(value: unknown): string | number | undefined {
  if (typeof value === 'string') return value.slice(0, 64);
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return undefined;
}

/** Throws `invalid_room` unless `room` is a valid room name. */
export function assertRoomName(room: unknown): asserts room is string {
  if (typeof room !== 'string' || !ROOM_NAME_PATTERN.test(room)) {
    throw new ValidationError('invalid_room', undefined, { details: { room: echo(room) } });
  }
}

/** Throws `invalid_id` unless `id` is a valid client message id. */
export function assertClientId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !CLIENT_ID_PATTERN.test(id)) {
    throw new ValidationError('invalid_id', undefined, { details: { id: echo(id) } });
  }
}

/** Throws `invalid_user` unless `sub` is a user id we accept (a Cognito `sub`: see `TOPIC_SUB_PATTERN`). */
export function assertUserId(sub: unknown): asserts sub is string {
  if (typeof sub !== 'string' || !TOPIC_SUB_PATTERN.test(sub)) {
    throw new ValidationError('invalid_user', undefined, { details: { user: echo(sub) } });
  }
}

/** Throws `invalid_group` unless `group` is a Cognito group name usable in topics (`GROUP_NAME_PATTERN`). */
export function assertGroupName(group: unknown): asserts group is string {
  if (typeof group !== 'string' || !GROUP_NAME_PATTERN.test(group)) {
    throw new ValidationError('invalid_group', undefined, { details: { group: echo(group) } });
  }
}

/**
 * The most values {@link inspect} walks. A JSON text holds no more values than it has bytes, so no frame within
 * API Gateway's 128 KB message or IoT's 128 KB payload comes near it; only a value built in code does (a cyclic or
 * shared object handed to the publisher), which would otherwise be walked forever.
 */
const MAX_INSPECTED_VALUES = Math.max(APIGW_LIMITS.maxMessageBytes, IOT_LIMITS.maxPayloadBytes);

/** Nesting depth of a JSON value; whether it holds a number JSON cannot represent (`1e400` parses to Infinity and
 * would be stored as null; a BigInt makes JSON.stringify throw); and whether the walk stopped at
 * {@link MAX_INSPECTED_VALUES}. Walked without recursion so a hostile value cannot overflow the stack. */
function inspect(value: unknown): { depth: number; nonFinite: boolean; tooMany: boolean } {
  let deepest = 0;
  let nonFinite = false;
  let counted = 1;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if ((typeof current === 'number' && !Number.isFinite(current)) || typeof current === 'bigint') nonFinite = true;
    if (typeof current !== 'object' || current === null) continue;
    deepest = Math.max(deepest, depth);
    const children = Object.values(current);
    counted += children.length;
    if (counted > MAX_INSPECTED_VALUES) return { depth: deepest, nonFinite, tooMany: true };
    for (const child of children) stack.push([child, depth + 1]);
  }
  return { depth: deepest, nonFinite, tooMany: false };
}

/** Throws `bad_request` or `body_too_large` unless `body` is a JSON object within the size and depth limits. */
export function assertBody(body: unknown, limit: number = LIMITS.maxBodyBytes): asserts body is JsonObject {
  if (!isJsonObject(body)) throw new ValidationError('bad_request', '`body` must be a JSON object.');
  // Depth first: JSON.stringify of a very deep value throws a RangeError instead of answering.
  const { depth, nonFinite, tooMany } = inspect(body);
  if (nonFinite)
    throw new ValidationError('bad_request', 'The body holds a number JSON cannot represent.', {
      details: { field: 'body' },
    });
  if (depth > LIMITS.maxBodyDepth) {
    throw new ValidationError(
      'bad_request',
      `The body is nested ${tooMany ? 'over ' : ''}${depth} levels deep; the limit is ${LIMITS.maxBodyDepth}.`,
      {
        details: { field: 'body', actual: depth, limit: LIMITS.maxBodyDepth },
      },
    );
  }
  if (tooMany) {
    // More values than bytes allowed: its JSON is over the limit, whatever it is (never stringified: it may be
    // cyclic, or shared so that its JSON would be exponentially long).
    throw new ValidationError(
      'body_too_large',
      `The body holds over ${MAX_INSPECTED_VALUES} values; the limit is ${limit} bytes.`,
      {
        details: { limit },
      },
    );
  }
  const size = utf8Length(JSON.stringify(body));
  if (size > limit) {
    throw new ValidationError('body_too_large', `The body is ${size} bytes; the limit is ${limit}.`, {
      details: { actual: size, limit },
    });
  }
}

function optionalId(frame: JsonObject): string | undefined {
  if (frame.id === undefined) return undefined;
  assertClientId(frame.id);
  return frame.id;
}

function optionalInt(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError('bad_request', `\`${name}\` must be an integer from ${min} to ${max}.`, {
      details: { field: name, actual: echo(value) },
    });
  }
  return value;
}

/**
 * Parses and validates a raw client frame. Unknown fields are ignored, so a client can never set
 * server-owned fields such as `from` or `seq`.
 * @throws {ValidationError} naming the first problem found.
 * @example
 * const frame = parseClientFrame('{"action":"send","room":"lobby","id":"c1","body":{"text":"hi"}}');
 */
export function parseClientFrame(raw: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ValidationError('bad_request', 'The frame is not valid JSON.');
  }
  return validateClientFrame(value);
}

/** Validates an already parsed client frame; see {@link parseClientFrame}. */
export function validateClientFrame(value: unknown): ClientFrame {
  if (!isJsonObject(value)) throw new ValidationError('bad_request', 'The frame must be a JSON object.');
  const { action } = value;
  if (typeof action !== 'string') throw new ValidationError('bad_request', 'The frame has no `action`.');
  if (!isClientAction(action)) {
    throw new ValidationError('unknown_action', `Unknown action "${action.slice(0, 64)}".`, {
      details: { action: action.slice(0, 64) },
    });
  }
  switch (action) {
    case 'ping':
      return { action, ...withId(optionalId(value)) };
    case 'leave':
      assertRoomName(value.room);
      return { action, room: value.room, ...withId(optionalId(value)) };
    case 'join': {
      assertRoomName(value.room);
      const id = optionalId(value);
      const frame: JoinFrame = { action, room: value.room, ...withId(id) };
      if (value.body !== undefined) {
        if (!isJsonObject(value.body)) throw new ValidationError('bad_request', '`body` must be a JSON object.');
        const { visibility } = value.body;
        if (visibility !== undefined && visibility !== 'public' && visibility !== 'private') {
          throw new ValidationError('bad_request', '`body.visibility` must be "public" or "private".');
        }
        frame.body = visibility === undefined ? {} : { visibility };
      }
      return frame;
    }
    case 'send':
      assertRoomName(value.room);
      assertClientId(value.id);
      assertBody(value.body);
      return { action, room: value.room, id: value.id, body: value.body };
    case 'history': {
      assertRoomName(value.room);
      const id = optionalId(value);
      const frame: HistoryFrame = { action, room: value.room, ...withId(id) };
      if (value.body !== undefined) {
        if (!isJsonObject(value.body)) throw new ValidationError('bad_request', '`body` must be a JSON object.');
        const after = optionalInt(value.body.after, 'after', 0, Number.MAX_SAFE_INTEGER);
        const before = optionalInt(value.body.before, 'before', 1, Number.MAX_SAFE_INTEGER);
        const limit = optionalInt(value.body.limit, 'limit', 1, LIMITS.historyPageMax);
        if (after !== undefined && before !== undefined) {
          throw new ValidationError('bad_request', 'Give `after` or `before`, not both.');
        }
        frame.body = {
          ...(after === undefined ? {} : { after }),
          ...(before === undefined ? {} : { before }),
          ...(limit === undefined ? {} : { limit }),
        };
      }
      return frame;
    }
    case 'inbox': {
      const frame: InboxFrame = { action, ...withId(optionalId(value)) };
      if (value.body !== undefined) {
        const body = objectBody(value.body);
        if (body.before !== undefined) assertClientIdField(body.before, 'before');
        const limit = optionalInt(body.limit, 'limit', 1, LIMITS.inboxPageMax);
        if (body.unreadOnly !== undefined && typeof body.unreadOnly !== 'boolean') {
          throw new ValidationError('bad_request', '`body.unreadOnly` must be true or false.');
        }
        frame.body = {
          ...(body.before === undefined ? {} : { before: body.before as string }),
          ...(limit === undefined ? {} : { limit }),
          ...(body.unreadOnly === undefined ? {} : { unreadOnly: body.unreadOnly }),
        };
      }
      return frame;
    }
    case 'markRead': {
      const body = objectBody(value.body);
      const { ids } = body;
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > LIMITS.maxMarkReadIds) {
        throw new ValidationError(
          'bad_request',
          `\`body.ids\` must be a list of 1 to ${LIMITS.maxMarkReadIds} notification ids.`,
          { details: { field: 'ids', limit: LIMITS.maxMarkReadIds } },
        );
      }
      for (const id of ids) assertClientIdField(id, 'ids');
      return { action, ...withId(optionalId(value)), body: { ids: [...new Set(ids as string[])] } };
    }
    case 'markAllRead':
      return { action, ...withId(optionalId(value)) };
    case 'announcements': {
      const frame: AnnouncementsFrame = { action, ...withId(optionalId(value)) };
      if (value.body !== undefined) {
        const body = objectBody(value.body);
        const since = optionalInt(body.since, 'since', 0, Number.MAX_SAFE_INTEGER);
        if (body.after !== undefined) assertClientIdField(body.after, 'after');
        const limit = optionalInt(body.limit, 'limit', 1, LIMITS.announcementsPageMax);
        if (since !== undefined && body.after !== undefined) {
          throw new ValidationError('bad_request', 'Give `since` or `after`, not both.');
        }
        frame.body = {
          ...(since === undefined ? {} : { since }),
          ...(body.after === undefined ? {} : { after: body.after as string }),
          ...(limit === undefined ? {} : { limit }),
        };
      }
      return frame;
    }
    case 'announce': {
      assertClientId(value.id);
      if (value.group !== undefined) assertGroupName(value.group);
      assertBody(value.body);
      return {
        action,
        id: value.id,
        ...(value.group === undefined ? {} : { group: value.group as string }),
        body: value.body,
      };
    }
  }
}

function objectBody(body: unknown): JsonObject {
  if (!isJsonObject(body)) throw new ValidationError('bad_request', '`body` must be a JSON object.');
  return body;
}

/** A field holding a server id (notification or announcement): the client id rules apply. */
function assertClientIdField(value: unknown, field: string): void {
  if (typeof value !== 'string' || !CLIENT_ID_PATTERN.test(value)) {
    throw new ValidationError('bad_request', `\`${field}\` must hold ids of 1-64 characters of [A-Za-z0-9_.:-].`, {
      details: { field, actual: echo(value) },
    });
  }
}

function withId(id: string | undefined): { id?: string } {
  return id === undefined ? {} : { id };
}

/**
 * Best-effort extraction of `action`, `id` and `room` from a frame that may have failed validation, so
 * that the error frame can still reference the request. Only values that pass their own rules are kept.
 */
export function frameRefOf(value: unknown): { action?: string; ref?: string; room?: string } {
  if (!isJsonObject(value)) return {};
  return {
    ...(typeof value.action === 'string' ? { action: value.action.slice(0, 64) } : {}),
    ...(typeof value.id === 'string' && CLIENT_ID_PATTERN.test(value.id) ? { ref: value.id } : {}),
    ...(typeof value.room === 'string' && ROOM_NAME_PATTERN.test(value.room) ? { room: value.room } : {}),
  };
}
