/**
 * fast-check generators of bad input for the bad-input suite: strings with every kind of code point (lone
 * surrogates included), room names, ids and user ids made to break topic, key and path syntax, wrong types,
 * prototype-pollution objects, deep nesting past `maxBodyDepth`, bodies at and past `maxBodyBytes`, and whole
 * client frames with one or more fields broken. Frames are produced as JSON text, so that nesting too deep for
 * `JSON.stringify` (tens of thousands of levels) can still be sent.
 */
import { CLIENT_ACTIONS, type ClientAction, LIMITS } from '@viba-realtime/protocol';
import fc from 'fast-check';

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
/** Characters that mean something to MQTT, IoT policies, URLs, DynamoDB keys or JSON. */
const syntaxChar = fc.constantFrom('/', '#', '+', '.', '..', '%', '%2F', '$', '*', '?', '\u0000', ' ', '"', '\\', ':');

/** One character: any code point, a lone surrogate, or a syntax character. */
export const wildChar = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: loneSurrogate },
  { weight: 2, arbitrary: syntaxChar },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
);

export const wildString = (maxLength = 40) => fc.string({ unit: wildChar, maxLength });

/** Strings of `alphabet`'s characters whose length is around a limit: `limit - 2` to `limit + 2`. */
export const aroundLength = (alphabet: string, limit: number) =>
  fc
    .integer({ min: Math.max(0, limit - 2), max: limit + 2 })
    .chain((n) => fc.string({ unit: fc.constantFrom(...alphabet), minLength: n, maxLength: n }));

const ROOM_CHARS = 'abcXYZ019_.-';
const ID_CHARS = 'abcXYZ019_.:-';
const USER_CHARS = 'abcXYZ019_-';

export const validRoom = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
export const validClientId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
export const validUser = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);

const inject = (base: fc.Arbitrary<string>, bad: fc.Arbitrary<string>) =>
  fc.tuple(base, bad, base).map(([a, b, c]) => `${a}${b}${c}`);

/** Room names: `/`, `#`, `+`, `..`, `%2F`, unicode, empty, 64/65/10,000 characters, prototype keys, and (most
 * often) near misses: valid characters around one that is not, or valid characters one past the length limit,
 * which tell a right pattern from a loose one. */
export const adversarialRoom = fc.oneof(
  fc.constantFrom(
    '/',
    '#',
    '+',
    '..',
    '.',
    '...',
    '-',
    '_',
    '%2F',
    'a/b',
    'lobby/#',
    'a+b',
    '../etc/passwd',
    '$aws',
    '',
    ' ',
    'lobby\n',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'ROOM#x',
    'MSGS#x',
    'é',
    '日本語',
    '😀',
    '\u0000',
    'a\u0000',
    '\ud800',
    'a'.repeat(64),
    'a'.repeat(65),
    'x'.repeat(10_000),
  ),
  validRoom,
  wildString(80),
  { weight: 3, arbitrary: inject(fc.stringMatching(/^[A-Za-z0-9_.-]{0,40}$/), syntaxChar) },
  { weight: 3, arbitrary: aroundLength(ROOM_CHARS, 64) },
);

/** Client ids (`id`, `markRead` ids, cursors). */
export const adversarialClientId = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    ':',
    '.',
    '..',
    '__proto__',
    'constructor',
    'a/b',
    'a#',
    'é',
    '\ud800',
    'id\n',
    'a'.repeat(64),
    'a'.repeat(65),
    'x'.repeat(10_000),
  ),
  validClientId,
  wildString(70),
  { weight: 3, arbitrary: inject(fc.stringMatching(/^[A-Za-z0-9_.:-]{0,40}$/), syntaxChar) },
  { weight: 3, arbitrary: aroundLength(ID_CHARS, 64) },
);

/** User ids (Cognito subs) for the publisher. */
export const adversarialUser = fc.oneof(
  fc.constantFrom(
    '',
    'a.b',
    'a/b',
    '+',
    '#',
    '$aws',
    '__proto__',
    'constructor',
    'backend',
    'é',
    'a'.repeat(128),
    'a'.repeat(129),
    'x'.repeat(10_000),
  ),
  validUser,
  wildString(130),
  { weight: 3, arbitrary: inject(fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/), syntaxChar) },
  { weight: 3, arbitrary: aroundLength(USER_CHARS, 128) },
);

/** Cognito group names for `announce`. */
export const adversarialGroup = fc.oneof(
  fc.constantFrom('', 'admin', 'beta', 'a/b', '+', '#', '..', '__proto__', 'a'.repeat(64), 'a'.repeat(65), 'é'),
  fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
  wildString(70),
  { weight: 3, arbitrary: inject(fc.stringMatching(/^[A-Za-z0-9_.-]{0,40}$/), syntaxChar) },
  { weight: 3, arbitrary: aroundLength(ROOM_CHARS, 64) },
);

/** Objects that would pollute `Object.prototype` if merged naively, as JSON parses them (own keys). */
export const protoPollution: fc.Arbitrary<Record<string, unknown>> = fc
  .constantFrom(
    '{"__proto__":{"polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    '{"__proto__":{"action":"ping","room":"lobby","id":"p","visibility":"private","text":"x"}}',
    '{"prototype":{"polluted":1},"__defineGetter__":1,"hasOwnProperty":1,"toString":1,"valueOf":1}',
    '{"a":{"__proto__":{"polluted":1}},"b":[{"constructor":{"prototype":{"polluted":1}}}]}',
  )
  .map((text) => JSON.parse(text) as Record<string, unknown>);

/** Any JSON value, unicode strings included. */
export const anyJson = fc.jsonValue({ maxDepth: 3, stringUnit: wildChar });

/** JSON values of every type but the one a field wants. */
export const wrongType = (not: 'string' | 'object' | 'number' | 'boolean' | 'array') =>
  anyJson.filter((v) => {
    const kind = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    return kind !== not;
  });

// ---- raw JSON fragments -----------------------------------------------------------------------------------

/** A value spliced into a frame as raw JSON text: nesting `JSON.stringify` cannot produce, or numbers JSON text
 * can hold but JS cannot (`1e400` parses to Infinity). */
export class Raw {
  constructor(readonly raw: string) {}
}

const RAW_MARK = '\u0000raw\u0000';

/** Nested arrays or objects `levels` deep (the outermost counts), as text. */
export function nestedText(levels: number, kind: 'array' | 'object' = 'array'): string {
  const open = kind === 'array' ? '[' : '{"a":';
  const close = kind === 'array' ? ']' : '}';
  return `${open.repeat(levels - 1)}${kind === 'array' ? '[1]' : '{"a":1}'}${close.repeat(levels - 1)}`;
}

/** Deep values: around `maxBodyDepth` (a body holding one of these is one level deeper), and far past it. */
export const deepValue: fc.Arbitrary<Raw> = fc
  .tuple(
    fc.oneof(
      fc.integer({ min: LIMITS.maxBodyDepth - 3, max: LIMITS.maxBodyDepth + 3 }),
      fc.constantFrom(100, 1_000, 10_000, 14_000),
    ),
    fc.constantFrom('array' as const, 'object' as const),
  )
  .map(([levels, kind]) => new Raw(nestedText(levels, kind)));

/** Numbers at the edges of the protocol's ranges (page limits 1-100, seqs from 0 or 1, safe integers). */
export const boundaryNumber = fc.constantFrom(
  -1,
  0,
  1,
  19,
  20,
  50,
  99,
  100,
  101,
  1000,
  1.5,
  2 ** 31,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
);

/** Objects nested around `maxBodyDepth` (the object itself is level 1). */
export const bodyNearDepth: fc.Arbitrary<Record<string, unknown>> = fc
  .integer({ min: LIMITS.maxBodyDepth - 2, max: LIMITS.maxBodyDepth + 3 })
  .map((levels) => JSON.parse(nestedText(levels, 'object')) as Record<string, unknown>);

export const hugeNumber: fc.Arbitrary<Raw> = fc
  .constantFrom('1e400', '-1e400', '123456789012345678901234567890', '-0', '1.0', '5e-324', '9007199254740993')
  .map((raw) => new Raw(raw));

/** JSON text of a value that may hold {@link Raw} fragments anywhere. */
export function toJsonText(value: unknown): string {
  const fragments: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Raw) {
      fragments.push(v.raw);
      return `${RAW_MARK}${fragments.length - 1}`;
    }
    return v;
  });
  return text.replace(/"\\u0000raw\\u0000(\d+)"/g, (_m, i: string) => fragments[Number(i)] as string);
}

// ---- bodies at the size limit -------------------------------------------------------------------------------

/** A body `{ "t": "..." }` whose JSON is exactly `bytes` UTF-8 bytes, filled with `fill` (1-6 bytes each as JSON). */
export function bodyOfBytes(bytes: number, fill: string): Record<string, string> {
  const overhead = Buffer.byteLength('{"t":""}');
  const unit = Buffer.byteLength(JSON.stringify(fill)) - 2;
  const room = bytes - overhead;
  const text = fill.repeat(Math.floor(room / unit)) + 'a'.repeat(room % unit);
  const body = { t: text };
  if (Buffer.byteLength(JSON.stringify(body)) !== bytes) throw new Error(`bodyOfBytes(${bytes}) is off`);
  return body;
}

/** Bodies at, just under and just over `maxBodyBytes`, with 1- to 6-byte characters. */
export const bodyNearLimit = fc
  .tuple(fc.constantFrom(-2, -1, 0, 1, 2, 3, 100), fc.constantFrom('a', 'é', '€', '😀', '\ud800', '"', '\u0001'))
  .map(([delta, fill]) => ({
    bytes: LIMITS.maxBodyBytes + delta,
    fill,
    body: bodyOfBytes(LIMITS.maxBodyBytes + delta, fill),
  }));

// ---- client frames with broken fields -----------------------------------------------------------------------

/** What a frame holds per field, before text encoding. */
type FrameValue = Record<string, unknown>;

const smallBody = fc.dictionary(fc.string({ unit: wildChar, maxLength: 8 }), anyJson, { maxKeys: 4 });
const sendBody = fc.oneof({ weight: 4, arbitrary: smallBody }, { weight: 1, arbitrary: bodyNearDepth });

/** A valid frame of `action` for a connection that joined `joinedRoom` (sends go there). */
function validFrame(action: ClientAction, joinedRoom: string): fc.Arbitrary<FrameValue> {
  const id = validClientId;
  const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
  const clean = (v: FrameValue) => Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined));
  switch (action) {
    case 'ping':
    case 'markAllRead':
      return fc.record({ action: fc.constant(action), id: opt(id) }).map(clean);
    case 'leave':
      return fc.record({ action: fc.constant(action), room: validRoom, id: opt(id) }).map(clean);
    case 'join':
      return fc
        .record({
          action: fc.constant(action),
          room: validRoom,
          id: opt(id),
          body: opt(fc.record({ visibility: opt(fc.constantFrom('public', 'private')) }).map(clean)),
        })
        .map(clean);
    case 'send':
      return fc.record({ action: fc.constant(action), room: fc.constant(joinedRoom), id, body: sendBody });
    case 'history':
      return fc
        .record({
          action: fc.constant(action),
          room: fc.oneof(fc.constant(joinedRoom), validRoom),
          id: opt(id),
          body: opt(
            fc
              .record({
                after: opt(fc.nat()),
                limit: opt(fc.integer({ min: 1, max: LIMITS.historyPageMax })),
              })
              .map(clean),
          ),
        })
        .map(clean);
    case 'inbox':
      return fc
        .record({
          action: fc.constant(action),
          id: opt(id),
          body: opt(
            fc
              .record({
                before: opt(id),
                limit: opt(fc.integer({ min: 1, max: LIMITS.inboxPageMax })),
                unreadOnly: opt(fc.boolean()),
              })
              .map(clean),
          ),
        })
        .map(clean);
    case 'markRead':
      return fc.record({
        action: fc.constant(action),
        id,
        body: fc.record({ ids: fc.array(id, { minLength: 1, maxLength: 5 }) }),
      });
    case 'announcements':
      return fc
        .record({
          action: fc.constant(action),
          id: opt(id),
          body: opt(
            fc
              .record({ since: opt(fc.nat()), limit: opt(fc.integer({ min: 1, max: LIMITS.announcementsPageMax })) })
              .map(clean),
          ),
        })
        .map(clean);
    case 'announce':
      return fc
        .record({ action: fc.constant(action), id, group: opt(fc.constantFrom('beta', 'ops')), body: sendBody })
        .map(clean);
  }
}

/** A replacement for one field: gone, the wrong type, hostile strings, huge, deep, prototype keys. */
function badValueFor(field: string): fc.Arbitrary<unknown> {
  const strings =
    field === 'room'
      ? adversarialRoom
      : field === 'id' || field === 'before' || field === 'after'
        ? adversarialClientId
        : field === 'group'
          ? adversarialGroup
          : field === 'action'
            ? fc.oneof(
                fc.constantFrom(...CLIENT_ACTIONS, 'PING', 'send ', '$default', '$connect', '__proto__'),
                wildString(),
              )
            : wildString();
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: strings },
    { weight: 2, arbitrary: anyJson },
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(10_000), 'é'.repeat(10_000)) },
    { weight: 1, arbitrary: deepValue },
    { weight: 1, arbitrary: hugeNumber },
    { weight: 1, arbitrary: protoPollution },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 2, arbitrary: boundaryNumber },
    // `markRead` takes 1 to maxMarkReadIds ids.
    {
      weight: field === 'ids' ? 3 : 0,
      arbitrary: fc
        .constantFrom(0, 1, LIMITS.maxMarkReadIds, LIMITS.maxMarkReadIds + 1)
        .map((n) => Array.from({ length: n }, (_, i) => `n${i}`)),
    },
  );
}

/** The fields each action reads (top level, then inside `body`): edits go mostly there. */
const READS: Record<ClientAction, { top: string[]; body: string[] }> = {
  ping: { top: ['id'], body: [] },
  join: { top: ['room', 'id', 'body'], body: ['visibility'] },
  leave: { top: ['room', 'id'], body: [] },
  send: { top: ['room', 'id', 'body'], body: ['text'] },
  history: { top: ['room', 'id', 'body'], body: ['after', 'before', 'limit'] },
  inbox: { top: ['id', 'body'], body: ['before', 'limit', 'unreadOnly'] },
  markRead: { top: ['id', 'body'], body: ['ids'] },
  markAllRead: { top: ['id'], body: [] },
  announcements: { top: ['id', 'body'], body: ['since', 'after', 'limit'] },
  announce: { top: ['id', 'group', 'body'], body: ['text'] },
};
const FIELDS = ['action', 'room', 'id', 'body', 'group'];
const BODY_FIELDS = ['visibility', 'after', 'before', 'limit', 'unreadOnly', 'ids', 'since', 'text'];

/** One edit of a frame of `action`: a top-level field, a body field, or an extra key, set to a bad value
 * (undefined deletes). Mostly fields the action reads; sometimes any. */
function editOf(action: ClientAction) {
  const { top, body } = READS[action];
  const where = <W extends string>(w: W, fields: string[]) =>
    fc.record({ where: fc.constant(w), field: fc.constantFrom(...fields) });
  return fc.oneof(
    { weight: 4, arbitrary: where('top', top) },
    { weight: body.length > 0 ? 3 : 0, arbitrary: where('body', body.length > 0 ? body : ['x']) },
    { weight: 1, arbitrary: where('top', FIELDS) },
    { weight: 1, arbitrary: where('body', BODY_FIELDS) },
    { weight: 1, arbitrary: where('extra', ['__proto__', 'constructor', 'from', 'seq', 'ts', 'x']) },
  );
}

/** A client frame with 0-2 broken fields, as the text to send, for a connection that joined `joinedRoom`. */
export function brokenFrame(joinedRoom: string): fc.Arbitrary<string> {
  return fc
    .constantFrom(...CLIENT_ACTIONS)
    .chain((action) =>
      fc.tuple(
        validFrame(action, joinedRoom),
        fc.array(
          editOf(action).chain((e) => badValueFor(e.field).map((value) => ({ ...e, value }))),
          { maxLength: 2 },
        ),
        // Pollution keys in the body too, where they are stored and read back.
        fc.option(protoPollution, { nil: undefined }),
      ),
    )
    .map(([frame, edits, pollution]) => {
      const value: FrameValue = { ...frame };
      for (const e of edits) {
        if (e.where === 'body') {
          const body = typeof value.body === 'object' && value.body !== null ? { ...(value.body as object) } : {};
          setOwn(body, e.field, e.value);
          value.body = body;
        } else {
          setOwn(value, e.field, e.value);
        }
      }
      if (pollution && typeof value.body === 'object' && value.body !== null && !Array.isArray(value.body)) {
        value.body = { ...(value.body as object), ...pollution };
      }
      return toJsonText(value);
    });
}

/** Sets (or, for undefined, deletes) an own property, `__proto__` included, without touching any prototype. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined) delete target[key];
  else Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Arbitrary frames: JSON of any shape, strings that are not JSON, objects with a real action and junk fields. */
export const arbitraryFrameText: fc.Arbitrary<string> = fc.oneof(
  fc.json({ maxDepth: 4, stringUnit: wildChar }),
  wildString(200),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.anything({ maxDepth: 3, withNullPrototype: true, withSparseArray: true, withUnicodeString: true }).map((v) => {
    const text = JSON.stringify(v);
    return text === undefined ? String(v) : text;
  }),
  fc
    .tuple(fc.constantFrom(...CLIENT_ACTIONS), fc.dictionary(wildString(10), anyJson, { maxKeys: 6 }))
    .map(([action, rest]) => JSON.stringify({ ...rest, action })),
  fc.constantFrom('', ' ', 'null', 'true', '[]', '{}', '"ping"', '{"action":null}', '{"action":["ping"]}', '{', '}{'),
);
