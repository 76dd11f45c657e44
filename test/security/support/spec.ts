/**
 * The oracle of the bad-input suite: what docs/PROTOCOL.md says the answer to a client frame or a publisher call
 * must be, written out again from the page (names, patterns and limits), NOT by calling `protocol/src/validate.ts`.
 * A validator that drifts from the documented contract therefore fails the properties instead of agreeing with
 * itself. Where several fields are wrong at once the page gives no order, so the oracle answers with the set of
 * codes any of them may produce.
 */
import { CLIENT_ACTIONS, type ErrorCode, LIMITS } from '@viba-realtime/protocol';

/** docs/PROTOCOL.md, "Error codes": `invalid_room` — 1-64 characters of `[A-Za-z0-9_.-]`. */
export const DOC_ROOM = /^[A-Za-z0-9_.-]{1,64}$/;
/** `invalid_id` — 1-64 characters of `[A-Za-z0-9_.:-]`. */
export const DOC_CLIENT_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
/** `invalid_user` — 1-128 characters of `[A-Za-z0-9_-]`. */
export const DOC_USER = /^[A-Za-z0-9_-]{1,128}$/;
/** `invalid_group` — 1-64 characters of `[A-Za-z0-9_.-]`. */
export const DOC_GROUP = /^[A-Za-z0-9_.-]{1,64}$/;

export const isRoom = (v: unknown): v is string => typeof v === 'string' && DOC_ROOM.test(v);
export const isClientId = (v: unknown): v is string => typeof v === 'string' && DOC_CLIENT_ID.test(v);
export const isUser = (v: unknown): v is string => typeof v === 'string' && DOC_USER.test(v);
export const isGroup = (v: unknown): v is string => typeof v === 'string' && DOC_GROUP.test(v);

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Nesting depth of objects and arrays (the value itself is 1), without recursion; `undefined` for a walk that
 * meets more than `budget` values (a cyclic or exponentially shared object). */
export function depthOf(value: unknown, budget = 1_000_000): number | undefined {
  let deepest = 0;
  let seen = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    if (++seen > budget) return undefined;
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== 'object' || current === null) continue;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** Whether a value holds something JSON cannot carry as data: a non-finite number or a BigInt. */
function holdsNonJsonNumber(value: unknown): boolean {
  const stack: unknown[] = [value];
  let seen = 0;
  while (stack.length > 0 && seen++ < 1_000_000) {
    const current = stack.pop();
    if (typeof current === 'bigint') return true;
    if (typeof current === 'number' && !Number.isFinite(current)) return true;
    if (typeof current === 'object' && current !== null) stack.push(...Object.values(current));
  }
  return false;
}

/** `body` of `send`, `announce` and the publisher: "any JSON object up to maxBodyBytes (UTF-8 bytes of the
 * body's JSON)", at most maxBodyDepth levels. Codes it may be refused with; empty when it is fine. */
export function bodyCodes(body: unknown): ErrorCode[] {
  if (!isObject(body)) return ['bad_request'];
  const depth = depthOf(body);
  if (depth === undefined) return ['bad_request', 'body_too_large'];
  const codes: ErrorCode[] = [];
  if (holdsNonJsonNumber(body)) codes.push('bad_request');
  // Deeper than the limit is bad_request whatever its size (PROTOCOL.md: "a body nested too deep"); its size is
  // not measured then (JSON.stringify of a very deep value overflows the stack).
  if (depth > LIMITS.maxBodyDepth) return [...codes, 'bad_request'];
  if (codes.length > 0) return codes;
  if (Buffer.byteLength(JSON.stringify(body)) > LIMITS.maxBodyBytes) codes.push('body_too_large');
  return codes;
}

const isIntIn = (v: unknown, min: number, max: number) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** What a client frame must be answered with, when validation decides it: the error codes allowed. An empty
 * list means the frame is valid and the answer is the action's own (see {@link SUCCESS_TYPE}). */
export function frameCodes(value: unknown): ErrorCode[] {
  if (!isObject(value)) return ['bad_request'];
  const { action } = value;
  if (typeof action !== 'string') return ['bad_request'];
  if (!(CLIENT_ACTIONS as readonly string[]).includes(action)) return ['unknown_action'];
  const codes = new Set<ErrorCode>();
  const bad = (code: ErrorCode) => codes.add(code);
  if (['join', 'leave', 'send', 'history'].includes(action) && !isRoom(value.room)) bad('invalid_room');
  const idRequired = action === 'send' || action === 'announce';
  if ((idRequired || value.id !== undefined) && !isClientId(value.id)) bad('invalid_id');
  const body = value.body;
  const optionalBody = (check: (b: Record<string, unknown>) => boolean) => {
    if (body === undefined) return;
    if (!isObject(body) || !check(body)) bad('bad_request');
  };
  switch (action) {
    case 'join':
      optionalBody((b) => b.visibility === undefined || b.visibility === 'public' || b.visibility === 'private');
      break;
    case 'send':
    case 'announce':
      for (const code of bodyCodes(body)) bad(code);
      if (action === 'announce' && value.group !== undefined && !isGroup(value.group)) bad('invalid_group');
      break;
    case 'history':
      optionalBody(
        (b) =>
          (b.after === undefined || isIntIn(b.after, 0, Number.MAX_SAFE_INTEGER)) &&
          (b.before === undefined || isIntIn(b.before, 1, Number.MAX_SAFE_INTEGER)) &&
          (b.limit === undefined || isIntIn(b.limit, 1, LIMITS.historyPageMax)) &&
          (b.after === undefined || b.before === undefined),
      );
      break;
    case 'inbox':
      optionalBody(
        (b) =>
          (b.before === undefined || isClientId(b.before)) &&
          (b.limit === undefined || isIntIn(b.limit, 1, LIMITS.inboxPageMax)) &&
          (b.unreadOnly === undefined || typeof b.unreadOnly === 'boolean'),
      );
      break;
    case 'markRead': {
      const ids = isObject(body) ? body.ids : undefined;
      if (
        !Array.isArray(ids) ||
        ids.length === 0 ||
        ids.length > LIMITS.maxMarkReadIds ||
        !ids.every((id) => isClientId(id))
      ) {
        bad('bad_request');
      }
      break;
    }
    case 'announcements':
      optionalBody(
        (b) =>
          (b.since === undefined || isIntIn(b.since, 0, Number.MAX_SAFE_INTEGER)) &&
          (b.after === undefined || isClientId(b.after)) &&
          (b.limit === undefined || isIntIn(b.limit, 1, LIMITS.announcementsPageMax)) &&
          (b.since === undefined || b.after === undefined),
      );
      break;
  }
  return [...codes];
}

/** The answer type of each valid client frame (PROTOCOL.md, "Server frames"). */
export const SUCCESS_TYPE: Record<string, string> = {
  ping: 'pong',
  join: 'ack',
  leave: 'ack',
  send: 'ack',
  history: 'history',
  inbox: 'inbox',
  markRead: 'ack',
  markAllRead: 'ack',
  announcements: 'announcements',
  announce: 'ack',
};

/** Frame types a server may send at all (PROTOCOL.md, "Server frames"). */
export const SERVER_TYPES = new Set([
  'ack',
  'chat',
  'history',
  'presence',
  'pong',
  'error',
  'notification',
  'inbox',
  'announcement',
  'announcements',
]);

/**
 * IoT Core's rules for a PUBLISH topic name (docs/research/iot-mqtt.md; PROTOCOL.md "Limits"): no wildcards,
 * not empty, no U+0000, at most 256 UTF-8 bytes and 7 slashes. `undefined` when valid.
 */
export function iotTopicProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'empty';
  if (topic.includes('+') || topic.includes('#')) return 'wildcard';
  if (topic.includes('\u0000')) return 'U+0000';
  if (Buffer.byteLength(topic) > 256) return 'over 256 bytes';
  if ((topic.match(/\//g) ?? []).length > 7) return 'over 7 slashes';
  return undefined;
}
