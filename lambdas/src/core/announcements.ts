/**
 * Announcements: to everyone, or to one Cognito group. Stored first (kept `LIMITS.announcementRetentionSeconds`
 * so a client that connects later can read them with `announcements`), then delivered live:
 * - MQTT: one IoT publish to `rt/announcements` or `rt/announcements/groups/{group}`; IoT fans it out to every
 *   subscriber, and the connect-time policy lets each user subscribe only to their own groups' topics;
 * - WebSocket: every connection of the audience, listed from the audience directory. Up to
 *   `LIMITS.fanoutInlineMax` connections are posted to by this invocation; a larger audience is split into
 *   batches of `LIMITS.fanoutBatchSize` on the fan-out queue, which workers drain (see batches.ts), so one
 *   announcement to 100,000 connections never has to fit in one Lambda invocation.
 */
import {
  type AckFrame,
  ADMIN_GROUP,
  type AnnounceFrame,
  type AnnouncementFrame,
  type AnnouncementsFrame,
  type AnnouncementsPageFrame,
  AUDIENCE_ALL,
  AUDIENCE_SHARDS,
  assertBody,
  assertClientId,
  assertGroupName,
  ForbiddenError,
  GROUP_NAME_PATTERN,
  groupAudience,
  type JsonObject,
  LIMITS,
  timeId,
  topics,
} from '@viba-realtime/protocol';
import { enqueueOrRun, splitIntoBatches } from './batches.js';
import type { Caller, CoreDeps } from './deps.js';
import { deliverTo } from './fanout.js';
import { randomSuffix } from './ids.js';
import { fitPage } from './pages.js';
import type { AnnouncementRecord, DeliveryOutcome } from './ports.js';

/** What to announce. */
export interface AnnounceInput {
  body: JsonObject;
  /** Only this Cognito group; absent: everyone. */
  group?: string;
  /** Idempotency key (client id rules): a repeated announce with the same key stores and sends nothing. */
  key?: string;
  /** Who announces: an admin's `sub` or `backend`. Set by the caller's identity, never by its input. */
  from: string;
}

/** What an announce did. */
export interface AnnounceOutcome {
  id: string;
  ts: number;
  /** True when the key was used before: nothing new was stored or sent. */
  duplicate: boolean;
  /** The MQTT broadcast publish; `skipped` when no MQTT channel is configured. */
  mqtt: DeliveryOutcome | 'skipped';
  /** WebSocket connections in the audience. */
  connections: number;
  /** Posts made by this invocation (audiences up to `LIMITS.fanoutInlineMax`, or batches the queue refused). */
  delivered: number;
  /** Batches the fan-out queue took (larger audiences). */
  batches: number;
}

export function toAnnouncementFrame(record: AnnouncementRecord): AnnouncementFrame {
  return {
    type: 'announcement',
    id: record.id,
    ts: record.ts,
    from: record.from,
    ...(record.group === undefined ? {} : { group: record.group }),
    body: record.body,
  };
}

/** Checks an announce input; throws a typed `ValidationError` naming the first problem. */
export function validateAnnounceInput(input: Omit<AnnounceInput, 'from'>): void {
  assertBody(input.body);
  if (input.group !== undefined) assertGroupName(input.group);
  if (input.key !== undefined) assertClientId(input.key);
}

/**
 * Stores an announcement and delivers it on both channels (see the module's description).
 * @throws {ValidationError} `bad_request`, `body_too_large`, `invalid_group`, `invalid_id`
 */
export async function announce(deps: CoreDeps, input: AnnounceInput): Promise<AnnounceOutcome> {
  validateAnnounceInput(input);
  const ts = deps.clock();
  const audience = input.group === undefined ? AUDIENCE_ALL : groupAudience(input.group);
  const { announcement, duplicate } = await deps.store.putAnnouncement(
    {
      audience,
      id: timeId('a', ts, randomSuffix()),
      ts,
      from: input.from,
      ...(input.group === undefined ? {} : { group: input.group }),
      body: input.body,
      expiresAt: Math.ceil(ts / 1000) + LIMITS.announcementRetentionSeconds,
    },
    input.key,
  );
  const outcome: AnnounceOutcome = {
    id: announcement.id,
    ts: announcement.ts,
    duplicate,
    mqtt: 'skipped',
    connections: 0,
    delivered: 0,
    batches: 0,
  };
  if (duplicate) return outcome;

  const frame = toAnnouncementFrame(announcement);
  if (deps.topics) {
    const topic = input.group === undefined ? topics.announcements : topics.groupAnnouncements(input.group);
    outcome.mqtt = await deps.topics.publish(topic, frame);
    if (outcome.mqtt !== 'delivered') deps.log.error('announcement not published to MQTT', { topic });
  }

  const shards = await Promise.all(
    Array.from({ length: AUDIENCE_SHARDS }, (_, shard) => deps.store.listAudienceShard(audience, shard)),
  );
  const targets = shards.flat();
  outcome.connections = targets.length;
  if (targets.length <= LIMITS.fanoutInlineMax || deps.queue === undefined) {
    if (deps.queue === undefined && targets.length > LIMITS.fanoutInlineMax) {
      deps.log.warn('large announcement delivered inline: no fan-out queue configured', {
        connections: targets.length,
      });
    }
    const { result } = await deliverTo(deps, frame, targets, { announcement: announcement.id });
    outcome.delivered = result.delivered;
  } else {
    // A refused enqueue runs here: retrying the announce would not help, its key now answers `duplicate`.
    const queued = await enqueueOrRun(
      { ...deps, queue: deps.queue },
      splitIntoBatches(announcement.id, frame, targets),
      {
        announcement: announcement.id,
      },
    );
    outcome.batches = queued.queued;
    outcome.delivered = queued.deliveredHere;
  }
  deps.log.info('announced', { ...outcome, audience });
  return outcome;
}

/**
 * The idempotency key of an admin's `announce`, unique per (admin, client id): `{sub}:{id}` when it fits the key
 * rules (64 characters), else `.` and a digest of it. Cutting it to 64 characters instead made two long ids of one
 * admin collide, and the second announcement was answered `duplicate` and never sent. No `{sub}:` key starts with
 * `.` (subs hold none).
 */
async function announceKey(sub: string, id: string): Promise<string> {
  const key = `${sub}:${id}`;
  if (key.length <= LIMITS.maxClientIdLength) return key;
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)));
  return `.${Array.from(digest.subarray(0, 20), (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The `announce` action: admins only (Cognito group `admin`); everyone else gets `forbidden`. */
export async function announceAction(deps: CoreDeps, caller: Caller, frame: AnnounceFrame): Promise<AckFrame> {
  if (!caller.groups.includes(ADMIN_GROUP)) {
    deps.log.warn('announce refused: not an admin', { sub: caller.sub });
    throw new ForbiddenError(`Only members of the "${ADMIN_GROUP}" group may announce.`);
  }
  const outcome = await announce(deps, {
    body: frame.body,
    ...(frame.group === undefined ? {} : { group: frame.group }),
    // The client id scoped by the sender, so two admins' ids never collide.
    key: await announceKey(caller.sub, frame.id),
    from: caller.sub,
  });
  return {
    type: 'ack',
    action: 'announce',
    ref: frame.id,
    id: outcome.id,
    ts: outcome.ts,
    ...(outcome.duplicate ? { duplicate: true } : {}),
  };
}

/** The `announcements` action: what the caller's audiences (everyone, and each of their groups) were told. */
export async function listAnnouncements(
  deps: CoreDeps,
  caller: Caller,
  frame: AnnouncementsFrame,
): Promise<AnnouncementsPageFrame> {
  const audiences = [
    AUDIENCE_ALL,
    ...caller.groups.filter((g) => GROUP_NAME_PATTERN.test(g)).map((g) => groupAudience(g)),
  ];
  const body = frame.body ?? {};
  const page = await deps.store.listAnnouncements(audiences, {
    ...(body.since === undefined ? {} : { since: body.since }),
    ...(body.after === undefined ? {} : { after: body.after }),
    limit: body.limit ?? LIMITS.announcementsPageDefault,
  });
  // Large bodies: the page is cut to fit one message, and continues after its last announcement.
  const { kept, cut } = fitPage(page.announcements.map(toAnnouncementFrame));
  const last = kept[kept.length - 1];
  const next = cut && last !== undefined ? { after: last.id } : page.next;
  return {
    type: 'announcements',
    ...(frame.id === undefined ? {} : { ref: frame.id }),
    announcements: kept,
    ...(next === undefined ? {} : { next }),
  };
}
