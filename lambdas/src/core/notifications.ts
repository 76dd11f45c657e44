/**
 * Notifications: the backend tells one user something. Each is stored in the user's inbox first (so a user
 * who is offline finds it later, unread until marked), then delivered live to every connection the user has
 * on either channel: one `@connections` post per WebSocket connection, one IoT publish to
 * `rt/users/{sub}/inbox` for all of the user's MQTT connections.
 */
import {
  type AckFrame,
  assertBody,
  assertClientId,
  assertUserId,
  type InboxFrame,
  type InboxPageFrame,
  type JsonObject,
  LIMITS,
  type MarkAllReadFrame,
  type MarkReadFrame,
  type NotificationFrame,
  TooManyRecipientsError,
  timeId,
  ValidationError,
} from '@viba-realtime/protocol';
import { mapWithConcurrency } from './concurrency.js';
import type { Caller, CoreDeps } from './deps.js';
import { deliverTo, type FanOutResult, noFanOut } from './fanout.js';
import { randomSuffix } from './ids.js';
import { fitPage } from './pages.js';
import type { NotificationRecord } from './ports.js';

/** What to notify. */
export interface NotifyInput {
  /** Cognito `sub`s of the recipients: 1 to `LIMITS.maxNotifyRecipients`, duplicates ignored. */
  userIds: readonly string[];
  /** The payload, a JSON object within `LIMITS.maxBodyBytes`. */
  body: JsonObject;
  /**
   * Idempotency key (1-64 characters of `[A-Za-z0-9_.:-]`): notifying the same user again with the same key
   * stores and delivers nothing new, so a backend may retry a failed call safely.
   */
  key?: string;
  /** How long the inbox keeps it, seconds: 60 to `LIMITS.maxNotificationRetentionSeconds`; default
   * `LIMITS.notificationRetentionSeconds`. */
  retentionSeconds?: number;
}

/** What happened for one recipient. */
export interface NotifyOutcome {
  userId: string;
  /** The notification's id (the first one's, for a duplicate key). */
  id: string;
  /** True when the key was used before: nothing new was stored or delivered. */
  duplicate: boolean;
  /** Live deliveries to the user's connections (0 when the user is offline). */
  delivery: FanOutResult;
}

/** Recipients handled at once by one `notify`. */
const RECIPIENT_CONCURRENCY = 8;

/** Checks a notify input; throws a typed `ValidationError` naming the first problem. */
export function validateNotifyInput(input: NotifyInput): void {
  if (!Array.isArray(input.userIds) || input.userIds.length === 0) {
    throw new ValidationError('invalid_user', 'Give at least one user id.');
  }
  if (input.userIds.length > LIMITS.maxNotifyRecipients) {
    throw new TooManyRecipientsError(input.userIds.length, LIMITS.maxNotifyRecipients);
  }
  for (const userId of input.userIds) assertUserId(userId);
  assertBody(input.body);
  if (input.key !== undefined) assertClientId(input.key);
  const retention = input.retentionSeconds;
  if (
    retention !== undefined &&
    (!Number.isInteger(retention) || retention < 60 || retention > LIMITS.maxNotificationRetentionSeconds)
  ) {
    throw new ValidationError(
      'bad_request',
      `retentionSeconds must be a whole number from 60 to ${LIMITS.maxNotificationRetentionSeconds}.`,
      { details: { field: 'retentionSeconds', limit: LIMITS.maxNotificationRetentionSeconds } },
    );
  }
}

export function toNotificationFrame(record: NotificationRecord): NotificationFrame {
  return { type: 'notification', id: record.id, ts: record.ts, body: record.body, read: record.read };
}

/**
 * Stores a notification in each recipient's inbox, then delivers it live to their connections.
 * @throws {ValidationError} `invalid_user`, `bad_request`, `body_too_large`, `invalid_id`
 * @throws {TooManyRecipientsError} more than `LIMITS.maxNotifyRecipients` user ids
 */
export async function notify(deps: CoreDeps, input: NotifyInput): Promise<NotifyOutcome[]> {
  validateNotifyInput(input);
  const userIds = [...new Set(input.userIds)];
  const retention = input.retentionSeconds ?? LIMITS.notificationRetentionSeconds;
  const settled = await mapWithConcurrency(userIds, RECIPIENT_CONCURRENCY, async (userId) => {
    const ts = deps.clock();
    const { notification, duplicate } = await deps.store.putNotification(
      {
        sub: userId,
        id: timeId('n', ts, randomSuffix()),
        ts,
        body: input.body,
        read: false,
        expiresAt: Math.ceil(ts / 1000) + retention,
      },
      input.key,
    );
    if (duplicate) return { userId, id: notification.id, duplicate, delivery: noFanOut() };
    const connections = await deps.store.listUserConnections(userId);
    // A WebSocket connection carries its token's expiry, so one past it is closed rather than notified (IoT cuts
    // MQTT connections at theirs).
    const targets = connections.map((c) => ({
      connectionId: c.connectionId,
      sub: c.sub,
      ...(c.channel === 'ws' ? { tokenExp: c.tokenExp } : {}),
    }));
    // One frame object for all targets: the routing delivery publishes once per user for MQTT.
    const { result } = await deliverTo(deps, toNotificationFrame(notification), targets, { notify: userId });
    return { userId, id: notification.id, duplicate, delivery: result };
  });
  const outcomes: NotifyOutcome[] = [];
  const errors: unknown[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') outcomes.push(s.value);
    else errors.push(s.reason);
  }
  // A store failure for one recipient must not hide the others' outcome from the logs, nor pass silently.
  if (errors.length > 0) {
    deps.log.error('notify failed for some recipients', { failed: errors.length, stored: outcomes.length });
    throw errors[0];
  }
  deps.log.info('notified', {
    recipients: outcomes.length,
    duplicates: outcomes.filter((o) => o.duplicate).length,
    delivered: outcomes.reduce((n, o) => n + o.delivery.delivered, 0),
  });
  return outcomes;
}

/** The `inbox` action: a page of the caller's inbox with the unread count. */
export async function inbox(deps: CoreDeps, caller: Caller, frame: InboxFrame): Promise<InboxPageFrame> {
  const limit = frame.body?.limit ?? LIMITS.inboxPageDefault;
  const [page, unread] = await Promise.all([
    deps.store.listNotifications(caller.sub, {
      ...(frame.body?.before === undefined ? {} : { before: frame.body.before }),
      limit,
      unreadOnly: frame.body?.unreadOnly ?? false,
    }),
    deps.store.countUnread(caller.sub),
  ]);
  // Large bodies: the page is cut to fit one message, and continues before its last notification.
  const { kept, cut } = fitPage(page.notifications.map(toNotificationFrame));
  const last = kept[kept.length - 1];
  const next = cut && last !== undefined ? { before: last.id } : page.next;
  return {
    type: 'inbox',
    ...(frame.id === undefined ? {} : { ref: frame.id }),
    notifications: kept,
    unread,
    ...(next === undefined ? {} : { next }),
  };
}

/** The `markRead` action. */
export async function markRead(deps: CoreDeps, caller: Caller, frame: MarkReadFrame): Promise<AckFrame> {
  await deps.store.markNotificationsRead(caller.sub, frame.body.ids);
  return readAck(deps, caller, 'markRead', frame.id);
}

/** The `markAllRead` action. */
export async function markAllRead(deps: CoreDeps, caller: Caller, frame: MarkAllReadFrame): Promise<AckFrame> {
  await deps.store.markAllNotificationsRead(caller.sub);
  return readAck(deps, caller, 'markAllRead', frame.id);
}

async function readAck(
  deps: CoreDeps,
  caller: Caller,
  action: 'markRead' | 'markAllRead',
  ref: string | undefined,
): Promise<AckFrame> {
  const unread = await deps.store.countUnread(caller.sub);
  return { type: 'ack', action, ...(ref === undefined ? {} : { ref }), unread, ts: deps.clock() };
}
