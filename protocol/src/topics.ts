/**
 * The MQTT topic layout and AWS IoT Core's message-broker limits. The IoT authorizer builds its policies
 * from these builders, the emulator's broker enforces these limits, and the SDK's MQTT transport
 * subscribes with them. Design and its reasons: docs/design/mqtt-channel.md.
 *
 * | topic                              | direction        | what                                                    |
 * |------------------------------------|------------------|---------------------------------------------------------|
 * | `rt/rooms/{room}/send`             | client -> server | a chat frame body to store in the room (ingress rule)   |
 * | `rt/users/{sub}/requests`          | client -> server | any client frame (join, leave, send, history, ping)     |
 * | `rt/users/{sub}/responses`         | server -> client | the answer to a request (ack, error, history, pong)     |
 * | `rt/users/{sub}/rooms/{room}`      | server -> client | the room's chat and presence frames, for a member       |
 * | `rt/users/{sub}/inbox`             | server -> client | notifications                                           |
 * | `rt/announcements`                 | server -> client | announcements to everyone                               |
 * | `rt/announcements/groups/{group}`  | server -> client | announcements to one Cognito group                      |
 */

import { IOT_LIMITS } from './limits.js';

/** Root of every topic of ours, so IoT rules and policies can scope to `rt/*`. */
export const TOPIC_ROOT = 'rt';

/** Cognito group names usable in topics: no `/`, `+`, `#`, and IoT's topic length in mind. */
export const GROUP_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** User ids (`sub`) usable in topics and client ids: Cognito subs are UUIDs; nothing that MQTT or IoT
 * policies give a meaning (`/`, `+`, `#`, `*`, `?`, `$`), and no `.`, which separates a sub from a client
 * id's suffix (see {@link clientIdFor}). */
export const TOPIC_SUB_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Separates a user's `sub` from a device suffix in MQTT client ids. Subs cannot contain it, so no user's
 * client id can ever be another user's (with `-`, user `alice` could claim `alice-bob`, user `alice-bob`'s id). */
export const CLIENT_ID_SEPARATOR = '.';

export const topics = {
  roomSend: (room: string) => `${TOPIC_ROOT}/rooms/${room}/send`,
  requests: (sub: string) => `${TOPIC_ROOT}/users/${sub}/requests`,
  responses: (sub: string) => `${TOPIC_ROOT}/users/${sub}/responses`,
  userRoom: (sub: string, room: string) => `${TOPIC_ROOT}/users/${sub}/rooms/${room}`,
  /** Filter for all of a user's rooms (one subscription instead of one per room). */
  userRoomsFilter: (sub: string) => `${TOPIC_ROOT}/users/${sub}/rooms/+`,
  inbox: (sub: string) => `${TOPIC_ROOT}/users/${sub}/inbox`,
  announcements: `${TOPIC_ROOT}/announcements`,
  groupAnnouncements: (group: string) => `${TOPIC_ROOT}/announcements/groups/${group}`,
} as const;

/** What a topic of ours is, with its parameters; `undefined` for any other topic. */
export type ParsedTopic =
  | { kind: 'roomSend'; room: string }
  | { kind: 'requests'; sub: string }
  | { kind: 'responses'; sub: string }
  | { kind: 'userRoom'; sub: string; room: string }
  | { kind: 'inbox'; sub: string }
  | { kind: 'announcements' }
  | { kind: 'groupAnnouncements'; group: string };

const ROOM = '[A-Za-z0-9_.-]{1,64}';
const SUB = '[A-Za-z0-9_-]{1,128}';
// `@__PURE__`: bundlers may drop the table from a client bundle that never parses topics (a `new RegExp` call
// could have side effects as far as they know).
const PARSERS: [RegExp, (m: RegExpMatchArray) => ParsedTopic][] = [
  [/* @__PURE__ */ new RegExp(`^rt/rooms/(${ROOM})/send$`), (m) => ({ kind: 'roomSend', room: m[1] as string })],
  [/* @__PURE__ */ new RegExp(`^rt/users/(${SUB})/requests$`), (m) => ({ kind: 'requests', sub: m[1] as string })],
  [/* @__PURE__ */ new RegExp(`^rt/users/(${SUB})/responses$`), (m) => ({ kind: 'responses', sub: m[1] as string })],
  [
    /* @__PURE__ */ new RegExp(`^rt/users/(${SUB})/rooms/(${ROOM})$`),
    (m) => ({ kind: 'userRoom', sub: m[1] as string, room: m[2] as string }),
  ],
  [/* @__PURE__ */ new RegExp(`^rt/users/(${SUB})/inbox$`), (m) => ({ kind: 'inbox', sub: m[1] as string })],
  [/^rt\/announcements$/, () => ({ kind: 'announcements' })],
  [
    /^rt\/announcements\/groups\/([A-Za-z0-9_.-]{1,64})$/,
    (m) => ({ kind: 'groupAnnouncements', group: m[1] as string }),
  ],
];

/** Parses one of our topic names; `undefined` for anything else, including names our rules forbid. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  for (const [pattern, build] of PARSERS) {
    const match = topic.match(pattern);
    if (match) return build(match);
  }
  return undefined;
}

/**
 * MQTT client ids belong to a user: `{sub}` or `{sub}.{suffix}` (one per device or tab). The IoT policy
 * allows connecting only with such ids, so a client can never take over another user's session.
 */
export function clientIdFor(sub: string, suffix?: string): string {
  return suffix === undefined ? sub : `${sub}${CLIENT_ID_SEPARATOR}${suffix}`;
}

/** Whether `clientId` belongs to `sub` (see {@link clientIdFor}). */
export function isClientIdOf(sub: string, clientId: string): boolean {
  return (
    clientId === sub ||
    (clientId.startsWith(`${sub}${CLIENT_ID_SEPARATOR}`) && clientId.length <= IOT_LIMITS.maxClientIdBytes)
  );
}
