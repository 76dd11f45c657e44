/**
 * The least-privilege IoT Core policy of one user, as the IoT custom authorizer returns it. Topic layout and
 * design: `protocol/src/topics.ts`, docs/design/mqtt-channel.md (option 1: room traffic reaches a member on
 * their own `rt/users/{sub}/rooms/{room}` topic, so a join needs no policy refresh). Policy semantics and
 * limits: docs/research/iot-policies.md.
 *
 * What a user may do:
 * - `iot:Connect` as `client/{sub}` or `client/{sub}.*` (see `clientIdFor`);
 * - `iot:Subscribe` to the literal filters `rt/users/{sub}/responses`, `rt/users/{sub}/rooms/+`,
 *   `rt/users/{sub}/inbox`, `rt/announcements` and `rt/announcements/groups/{group}` per Cognito group;
 * - `iot:Receive` on the same topics (`rt/users/{sub}/rooms/*` for the rooms);
 * - `iot:Publish` to `rt/users/{sub}/requests` and to `rt/rooms/{room}/send` of the rooms the user was a
 *   member of when the policy was built.
 *
 * The user's `sub` is written into every resource rather than `${iot:ClientId}`: IoT substitutes the client
 * id literally, so with a client id of `+` a `topicfilter/rt/users/${iot:ClientId}/inbox` grant would allow
 * subscribing to `rt/users/+/inbox`, everyone's inbox (the AWS docs' own warning, quoted in the research note).
 */
import {
  CLIENT_ID_SEPARATOR,
  GROUP_NAME_PATTERN,
  IOT_LIMITS,
  ROOM_NAME_PATTERN,
  TOPIC_SUB_PATTERN,
  topics,
} from '@viba-realtime/protocol';

/** The policy language version that IoT evaluates with variables; we use none, but IoT's examples all say so. */
export const IOT_POLICY_VERSION = '2012-10-17';

/** Who the policy is for, and where. */
export interface IotPolicyInput {
  /** AWS region of the IoT endpoint, e.g. `eu-west-1`. */
  region: string;
  /** 12-digit AWS account id. */
  accountId: string;
  /** The user's Cognito `sub`; must match `TOPIC_SUB_PATTERN`. */
  sub: string;
  /** The user's Cognito groups; names failing `GROUP_NAME_PATTERN` are skipped (they cannot be topics). */
  groups: readonly string[];
  /** Rooms the user is a member of now; names failing `ROOM_NAME_PATTERN` are skipped. */
  memberRooms: readonly string[];
}

/** {@link buildIotPolicy}'s answer: the documents and what had to be left out of them. */
export interface IotPolicy {
  /** Policy documents as compact JSON strings (the IoT API model types them as strings). */
  documents: string[];
  /** Member rooms granted `iot:Publish` on their send topic, in input order. */
  grantedRooms: string[];
  /** Member rooms that did not fit in the documents; their messages go through the requests topic. */
  omittedRooms: string[];
  /** Groups that were skipped: invalid names, or (only with hundreds of groups) no room left. */
  skippedGroups: string[];
}

/** Why a policy cannot be built at all: the `sub` cannot be written into resources safely, or the
 * mandatory grants do not fit the limits (a region or account id of absurd length). */
export class IotPolicyBuildError extends Error {
  override readonly name = 'IotPolicyBuildError';
}

type Action = 'iot:Connect' | 'iot:Subscribe' | 'iot:Receive' | 'iot:Publish';

interface Statement {
  Effect: 'Allow';
  Action: Action;
  Resource: string[];
}

interface Grant {
  action: Action;
  resource: string;
}

/** Limits of the packer; IoT's own by default. Tests may shrink them to force splitting. */
export interface IotPolicyLimits {
  maxDocuments: number;
  maxDocumentChars: number;
}

const DEFAULT_LIMITS: IotPolicyLimits = {
  maxDocuments: IOT_LIMITS.maxPolicyDocuments,
  maxDocumentChars: IOT_LIMITS.maxPolicyDocumentChars,
};

const ACCOUNT_ID_PATTERN = /^\d{12}$/;
// Region names are lower-case words and digits joined by dashes (`us-east-1`, `us-gov-west-1`); nothing that
// IAM wildcards or ARN syntax would read differently.
const REGION_PATTERN = /^[a-z0-9-]{1,32}$/;

/**
 * Documents being filled. Each document holds at most one statement per action, so a resource costs only its
 * quoted ARN and a comma; sizes are measured on the exact JSON that will be returned.
 */
class Packer {
  readonly #limits: IotPolicyLimits;
  readonly #documents: Statement[][] = [[]];

  constructor(limits: IotPolicyLimits) {
    this.#limits = limits;
  }

  /** Adds all grants to the current document, or all to a new one; false (and nothing added) if neither fits. */
  add(grants: readonly Grant[]): boolean {
    if (this.#tryAdd(this.#current(), grants)) return true;
    if (this.#documents.length >= this.#limits.maxDocuments) return false;
    const fresh: Statement[] = [];
    if (!this.#tryAdd(fresh, grants)) return false;
    this.#documents.push(fresh);
    return true;
  }

  documents(): string[] {
    return this.#documents.filter((statements) => statements.length > 0).map(serialize);
  }

  #current(): Statement[] {
    return this.#documents[this.#documents.length - 1] as Statement[];
  }

  #tryAdd(statements: Statement[], grants: readonly Grant[]): boolean {
    const candidate = statements.map((s) => ({ ...s, Resource: [...s.Resource] }));
    for (const grant of grants) {
      const statement = candidate.find((s) => s.Action === grant.action);
      if (statement) statement.Resource.push(grant.resource);
      else candidate.push({ Effect: 'Allow', Action: grant.action, Resource: [grant.resource] });
    }
    // `.length` counts UTF-16 units, never fewer than IoT's characters; everything here is ASCII anyway.
    if (serialize(candidate).length > this.#limits.maxDocumentChars) return false;
    statements.splice(0, statements.length, ...candidate);
    return true;
  }
}

function serialize(statements: Statement[]): string {
  return JSON.stringify({ Version: IOT_POLICY_VERSION, Statement: statements });
}

/**
 * Builds the user's policy and reports what did not fit.
 *
 * Packing order: the user's own grants (connect, requests, responses, rooms, inbox, announcements), then one
 * subscribe+receive pair per group, then one publish grant per member room, each pair kept in one document.
 * When the documents are full, the remaining rooms are left out: IoT allows 10 documents of 2,048 characters,
 * which hold about 140 (64-character names) to 260 (short names) room send topics. A member of more rooms
 * still reaches every room through `rt/users/{sub}/requests` (a `send` frame there goes through the same
 * core, membership checked), and receives every room's traffic regardless, since delivery is on the user's
 * own topics. Publishing to an omitted room's send topic is refused by IoT; a room joined after the connect
 * is granted at the next refresh (`refreshAfterInSeconds`), if it fits.
 *
 * @throws {IotPolicyBuildError} for a `sub`, region or account id that cannot be written into ARNs safely.
 */
export function buildIotPolicy(input: IotPolicyInput, limits: IotPolicyLimits = DEFAULT_LIMITS): IotPolicy {
  const { region, accountId, sub } = input;
  // The sub becomes part of resource patterns: `*` or `?` in it would be IAM wildcards, `+`/`#`/`/` would
  // reach other users' topics. Refuse rather than escape: Cognito subs are UUIDs.
  if (!TOPIC_SUB_PATTERN.test(sub)) throw new IotPolicyBuildError(`sub "${sub}" is not usable in IoT resources.`);
  if (!ACCOUNT_ID_PATTERN.test(accountId)) throw new IotPolicyBuildError(`"${accountId}" is not an AWS account id.`);
  if (!REGION_PATTERN.test(region)) throw new IotPolicyBuildError(`"${region}" is not an AWS region.`);

  const arn = (kind: 'client' | 'topic' | 'topicfilter', name: string) =>
    `arn:aws:iot:${region}:${accountId}:${kind}/${name}`;
  const packer = new Packer(limits);

  const own: Grant[] = [
    { action: 'iot:Connect', resource: arn('client', sub) },
    { action: 'iot:Connect', resource: arn('client', `${sub}${CLIENT_ID_SEPARATOR}*`) },
    { action: 'iot:Publish', resource: arn('topic', topics.requests(sub)) },
    { action: 'iot:Subscribe', resource: arn('topicfilter', topics.responses(sub)) },
    { action: 'iot:Receive', resource: arn('topic', topics.responses(sub)) },
    // Subscribe: the literal `+` filter only (policies treat `+` as a plain character). Receive: `*` covers
    // every room topic under the user's own prefix, and nothing outside it.
    { action: 'iot:Subscribe', resource: arn('topicfilter', topics.userRoomsFilter(sub)) },
    { action: 'iot:Receive', resource: arn('topic', `${topics.userRoom(sub, '')}*`) },
    { action: 'iot:Subscribe', resource: arn('topicfilter', topics.inbox(sub)) },
    { action: 'iot:Receive', resource: arn('topic', topics.inbox(sub)) },
    { action: 'iot:Subscribe', resource: arn('topicfilter', topics.announcements) },
    { action: 'iot:Receive', resource: arn('topic', topics.announcements) },
  ];
  // One grant at a time, so that even with a 128-character sub they spill over into a second document
  // instead of failing; if they don't fit in all documents, no policy makes sense.
  for (const grant of own) {
    if (!packer.add([grant])) throw new IotPolicyBuildError("The user's own grants do not fit in a policy.");
  }

  const skippedGroups: string[] = [];
  for (const group of new Set(input.groups)) {
    const topic = GROUP_NAME_PATTERN.test(group) ? topics.groupAnnouncements(group) : undefined;
    const fits =
      topic !== undefined &&
      packer.add([
        { action: 'iot:Subscribe', resource: arn('topicfilter', topic) },
        { action: 'iot:Receive', resource: arn('topic', topic) },
      ]);
    if (!fits) skippedGroups.push(group);
  }

  const grantedRooms: string[] = [];
  const omittedRooms: string[] = [];
  let full = false;
  for (const room of new Set(input.memberRooms)) {
    // An invalid name can't be a topic level (and was never accepted by `join`); it is not "omitted", as the
    // requests topic would refuse it too.
    if (!ROOM_NAME_PATTERN.test(room)) continue;
    // A room fails only when every document is in use. Stop there rather than look for shorter names that
    // might squeeze in: the first rooms keep priority, and a user in thousands of rooms costs no more work.
    if (!full && packer.add([{ action: 'iot:Publish', resource: arn('topic', topics.roomSend(room)) }])) {
      grantedRooms.push(room);
    } else {
      full = true;
      omittedRooms.push(room);
    }
  }

  return { documents: packer.documents(), grantedRooms, omittedRooms, skippedGroups };
}

/**
 * The user's IoT policy documents (compact JSON strings, each within `IOT_LIMITS.maxPolicyDocumentChars`,
 * at most `IOT_LIMITS.maxPolicyDocuments`). See {@link buildIotPolicy} for what is granted and what happens to
 * rooms that do not fit.
 * @example
 * const documents = buildIotPolicyDocuments({
 *   region: 'us-east-1', accountId: '123456789012', sub, groups: ['staff'], memberRooms: ['lobby'],
 * });
 * @throws {IotPolicyBuildError} for a `sub`, region or account id that cannot be written into ARNs safely.
 */
export function buildIotPolicyDocuments(input: IotPolicyInput): string[] {
  return buildIotPolicy(input).documents;
}
