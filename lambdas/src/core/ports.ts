/**
 * The two ports of the core: where state lives ({@link Store}) and how frames reach connections
 * ({@link Delivery}). The core knows nothing of DynamoDB, API Gateway or IoT; adapters implement these.
 */
import type { JsonObject, RoomVisibility, ServerFrame } from '@viba-realtime/protocol';

/** Milliseconds since the epoch. Injected so tests can move time without sleeping. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** The channel a connection came in on: API Gateway WebSocket or IoT Core MQTT. */
export type Channel = 'ws' | 'mqtt';

/**
 * Where an MQTT connection stands in IoT's lifecycle events. IoT may deliver `connected` / `disconnected`
 * late, twice or out of order; `versionNumber` (per client id, shared by a session's two events) orders
 * them, so a stale event never overwrites what a newer one wrote.
 */
export interface ConnectionLifecycle {
  versionNumber: number;
  /** Epoch ms of the event, kept for diagnosis. */
  timestamp: number;
}

export interface ConnectionRecord {
  connectionId: string;
  sub: string;
  username: string;
  groups: string[];
  channel: Channel;
  /** Epoch ms. */
  connectedAt: number;
  /** Token expiry, epoch seconds. */
  tokenExp: number;
  /** Epoch seconds after which the record is expired (TTL): the channel's longest connection plus margin. */
  expiresAt: number;
  /** MQTT only: the lifecycle event that wrote the record. */
  lifecycle?: ConnectionLifecycle;
}

export interface RoomRecord {
  room: string;
  visibility: RoomVisibility;
  owner: string;
  /** Epoch ms. */
  createdAt: number;
  /** Highest seq handed out so far (0 for a new room). */
  lastSeq: number;
  /** Set by the backend's `closeRoom`: no joins, no sends. */
  closed?: boolean;
}

/** A notification in a user's inbox. */
export interface NotificationRecord {
  sub: string;
  /** Server id, sorts by time (`timeId('n', ...)`). */
  id: string;
  /** Epoch ms. */
  ts: number;
  body: JsonObject;
  read: boolean;
  /** Epoch seconds (TTL): the retention the backend chose. */
  expiresAt: number;
}

/** An announcement, kept for `announcements` reads. */
export interface AnnouncementRecord {
  /** `all` or `group.{group}` (see `AUDIENCE_ALL`, `groupAudience`). */
  audience: string;
  /** Server id, sorts by time (`timeId('a', ...)`). */
  id: string;
  /** Epoch ms. */
  ts: number;
  from: string;
  group?: string;
  body: JsonObject;
  /** Epoch seconds (TTL). */
  expiresAt: number;
}

/** A claim on a fan-out batch (see {@link Store.claimBatch}). */
export type BatchClaim =
  /** This worker runs the batch; the first `doneCount` targets were already delivered by a worker that died. */
  | { claimed: true; doneCount: number }
  /** Another worker finished the batch, or is running it now (its claim is not stale). */
  | { claimed: false; state: 'done' | 'running' };

export interface SubscriptionRecord {
  room: string;
  connectionId: string;
  sub: string;
  /** Epoch ms; orders a user's connections in a room for presence. */
  subscribedAt?: number;
  /** WebSocket only: the connection's token expiry, epoch seconds. A queued fan-out runs later than the read of
   * the room, so its targets carry it and `deliverTo` closes one past it instead of posting. */
  tokenExp?: number;
}

export interface StoredMessage {
  /** Server message id. */
  id: string;
  room: string;
  from: string;
  seq: number;
  /** Epoch ms. */
  ts: number;
  body: JsonObject;
  /** The sender's client id. */
  ref: string;
}

/**
 * The de-duplication record of one (room, sender, client id). It moves from claimed (a message id) to
 * reserved (`seq` and `ts` taken for that id) to `stored` (the message is in the table). Only the holder
 * of the current `messageId` may move it on.
 */
export interface DedupeRecord {
  messageId: string;
  /** Epoch ms when the claim was made or last taken over. */
  claimedAt: number;
  /** Set once a seq is reserved for the message. */
  seq?: number;
  ts?: number;
  /** True once the message is stored. */
  stored?: boolean;
}

export type ClaimResult = { claimed: true } | { claimed: false; existing: DedupeRecord };

export interface MessagePage {
  /** Ascending seq order. */
  messages: StoredMessage[];
  /** Present when more messages may exist in the same direction. */
  next?: { after: number } | { before: number };
}

/**
 * Persistence for the core. Every method is safe to call concurrently from many Lambda instances:
 * writes that can race are conditional. Reads never return expired items (TTL deletion is lazy).
 */
export interface Store {
  /**
   * Records a connection. With `connection.lifecycle` the write is conditional: it happens only if no record
   * (nor a gone mark of {@link Store.markConnectionGone}) with the same or a newer `versionNumber` is stored, and
   * returns false otherwise, so a late or repeated `connected` event changes nothing. Without it, always true.
   */
  putConnection(connection: ConnectionRecord): Promise<boolean>;
  getConnection(connectionId: string): Promise<ConnectionRecord | undefined>;
  /** Deletes the connection and all its subscriptions; returns the rooms it was subscribed to. Idempotent. */
  deleteConnection(connectionId: string): Promise<string[]>;
  /**
   * Ends an MQTT session: replaces the connection's record by a gone mark carrying `lifecycle` (which blocks a
   * late `connected` of the same session; it expires at `expiresAt`, epoch seconds), then deletes the
   * connection's subscriptions made up to the session's end (`subscribedAt <= lifecycle.timestamp`) and
   * returns their rooms (`rooms`: the live ones). Later ones may be the next session's, whose `connected` is not
   * recorded yet: they are kept, but made to expire at `pendingExpiresAt` unless that `connected` extends them
   * ({@link Store.setSubscriptionsExpiry}); `pending` counts them. Conditional on no newer `versionNumber` being
   * stored: then nothing changes and the answer is undefined (the `disconnected` event is stale).
   */
  markConnectionGone(
    connectionId: string,
    lifecycle: ConnectionLifecycle,
    expiresAt: number,
    pendingExpiresAt: number,
  ): Promise<{ rooms: string[]; pending: number } | undefined>;
  listUserConnections(sub: string): Promise<ConnectionRecord[]>;

  getRoom(room: string): Promise<RoomRecord | undefined>;
  /** Creates the room unless it exists (conditional write); returns the room as stored either way. The
   * owner becomes a member in the same call. */
  createRoom(room: Omit<RoomRecord, 'lastSeq'>): Promise<{ room: RoomRecord; created: boolean }>;
  isMember(room: string, sub: string): Promise<boolean>;
  addMember(room: string, sub: string): Promise<void>;
  removeMember(room: string, sub: string): Promise<void>;
  /** Rooms the user is a member of, all pages read, in room-name order. Read from an index, so a
   * membership written an instant ago may be missing (the IoT authorizer tolerates that: its room grants
   * are refreshed, and every room is reachable through the user's requests topic anyway). */
  listUserRooms(sub: string): Promise<string[]>;

  /** Subscribes a connection to a room; `expiresAt` (epoch seconds) is the connection's own expiry. */
  subscribe(subscription: SubscriptionRecord, expiresAt: number): Promise<void>;
  unsubscribe(room: string, connectionId: string): Promise<void>;
  /**
   * Sets the expiry (epoch seconds) of the connection's subscriptions, of all of them or of one `room`. Only
   * existing subscriptions change: one removed meanwhile (a leave, a disconnect) is not brought back.
   */
  setSubscriptionsExpiry(connectionId: string, expiresAt: number, room?: string): Promise<void>;
  isSubscribed(room: string, connectionId: string): Promise<boolean>;
  /** Rooms the connection is subscribed to. */
  listConnectionRooms(connectionId: string): Promise<string[]>;
  /** Every live subscription of a room, all pages read. */
  listRoomSubscriptions(room: string): Promise<SubscriptionRecord[]>;

  /** Claims (room, sub, clientId) for a new message. Conditional: exactly one concurrent caller wins. */
  claimDedupe(room: string, sub: string, clientId: string, messageId: string, now: number): Promise<ClaimResult>;
  /**
   * Takes over a claim whose holder is presumed dead. Succeeds only if the record is still exactly as the
   * caller last saw it (same `messageId` and `claimedAt`) and not stored, so exactly one of several
   * concurrent callers wins. Sets `messageId` and `claimedAt`; a reserved seq is kept.
   */
  takeOverClaim(
    room: string,
    sub: string,
    clientId: string,
    seen: DedupeRecord,
    messageId: string,
    now: number,
  ): Promise<boolean>;
  /** Reserves `seq`/`ts` on the claim if `messageId` still holds it and nothing is reserved yet (or, with
   * `replacing`, the reserved seq is still that one); false if the claim was lost. */
  reserveSeq(
    room: string,
    sub: string,
    clientId: string,
    messageId: string,
    result: { seq: number; ts: number },
    replacing?: number,
  ): Promise<boolean>;
  /** Marks the claim's message stored, if `messageId` still holds the claim (false otherwise). */
  markStored(room: string, sub: string, clientId: string, messageId: string): Promise<boolean>;
  /**
   * Gives up a claim whose request failed before its fan-out: the claim becomes stale at once (`claimedAt` 0) and
   * not stored, keeping its message id and any reserved seq, so the next request with the client id takes it over
   * and finishes the job without waiting `LIMITS.dedupeClaimStaleMs`. Only if `messageId` and `claimedAt` still
   * hold it (a takeover sets a new `claimedAt`), so a request that lost its claim cannot reopen its successor's.
   * False when the claim changed hands.
   */
  releaseClaim(room: string, sub: string, clientId: string, messageId: string, claimedAt: number): Promise<boolean>;

  /** Closes a room (sets `closed`); false if there is no such room. */
  closeRoom(room: string): Promise<boolean>;
  /** Every member of a room (membership records), all pages read. */
  listRoomMembers(room: string): Promise<string[]>;

  // ---- notifications (inbox) ----
  /**
   * Stores a notification. With `key`, idempotent per (sub, key): if the key was used before, nothing is
   * stored and the first notification is returned with `duplicate: true`.
   */
  putNotification(
    notification: NotificationRecord,
    key?: string,
  ): Promise<{ notification: NotificationRecord; duplicate: boolean }>;
  /** A page of the inbox, newest first, from `before` (exclusive id); `next` when older ones exist. Expired
   * notifications are never returned. */
  listNotifications(
    sub: string,
    query: { before?: string; limit: number; unreadOnly: boolean },
  ): Promise<{ notifications: NotificationRecord[]; next?: { before: string } }>;
  /** Unread, unexpired notifications in the inbox. */
  countUnread(sub: string): Promise<number>;
  /** Marks notifications read (unknown or already read ids are skipped); returns how many changed. */
  markNotificationsRead(sub: string, ids: readonly string[]): Promise<number>;
  /** Marks every unread notification read; returns how many changed. */
  markAllNotificationsRead(sub: string): Promise<number>;

  // ---- announcements ----
  /** Stores an announcement. With `key`, idempotent per key (as {@link Store.putNotification}). */
  putAnnouncement(
    announcement: AnnouncementRecord,
    key?: string,
  ): Promise<{ announcement: AnnouncementRecord; duplicate: boolean }>;
  /**
   * Announcements of several audiences merged oldest first: those with `ts >= since`, or with an id after
   * `after` (exclusive), or (neither) all that are kept; at most `limit`, `next` when more follow.
   */
  listAnnouncements(
    audiences: readonly string[],
    query: { since?: number; after?: string; limit: number },
  ): Promise<{ announcements: AnnouncementRecord[]; next?: { after: string } }>;
  /** The live WebSocket connections of one shard (0 .. AUDIENCE_SHARDS-1) of an audience, all pages read.
   * `putConnection` of a `ws` connection enters it in `all` and its groups' audiences; `deleteConnection`
   * removes it. */
  listAudienceShard(audience: string, shard: number): Promise<DeliveryTarget[]>;
  /**
   * Up to `limit` WebSocket connections of one shard (0 .. AUDIENCE_SHARDS-1) whose token expired at or before
   * `nowSeconds`, oldest expiry first, each with its `tokenExp`. From the token-expiry index of the `all`
   * audience entries, which `deleteConnection` removes, so a closed connection is not listed again.
   */
  listExpiredConnections(shard: number, nowSeconds: number, limit: number): Promise<DeliveryTarget[]>;

  // ---- fan-out batches ----
  /**
   * Claims a batch for a worker: succeeds if the batch was never claimed, or its claim is older than
   * `LIMITS.fanoutClaimStaleMs` and not done (a worker died: its checkpoint is handed over). Conditional, so
   * of two workers given the same batch (queues deliver at least once) exactly one runs it.
   */
  claimBatch(batchId: string, now: number): Promise<BatchClaim>;
  /** Records that the first `doneCount` targets of a claimed batch were delivered. */
  checkpointBatch(batchId: string, doneCount: number): Promise<void>;
  /** Gives a running batch's claim up (its worker failed and the queue will retry the message): the next
   * claim takes it over at once, from its checkpoint, moved forward to `doneCount` (the targets the
   * failed worker reached since its last checkpoint, so the retry does not post to them again). */
  releaseBatch(batchId: string, doneCount: number): Promise<void>;
  /** Marks a batch done (kept a day, so a late duplicate of its queue message finds it done). */
  completeBatch(batchId: string, now: number): Promise<void>;

  /** Atomically increments the room's counter and returns the new seq (1, 2, 3, ...). */
  nextSeq(room: string): Promise<number>;
  /** Stores a message. Idempotent for the same message id at the same seq; rejects if another message
   * already holds that seq. */
  putMessage(message: StoredMessage): Promise<void>;
  /** Closes a seq for good: returns the message if one is already stored there, otherwise writes a
   * tombstone (skipped by listMessages) so that no late write can fill it, and returns undefined. */
  abandonSeq(room: string, seq: number): Promise<StoredMessage | undefined>;
  /** A page of messages: `after` pages forward from a seq (exclusive), `before` backward (exclusive);
   * neither gives the newest. Always returned in ascending seq order. */
  listMessages(room: string, query: { after?: number; before?: number; limit: number }): Promise<MessagePage>;
}

/** What happened to one post. */
export type DeliveryOutcome = 'delivered' | 'gone' | 'failed';

/** A connection to post to, with its user: MQTT delivers per user (`rt/users/{sub}/rooms/{room}`). */
export interface DeliveryTarget {
  connectionId: string;
  sub: string;
  /** WebSocket only: the connection's token expiry, epoch seconds. A fan-out closes a target past it instead of
   * posting to it (see `deliverTo`). */
  tokenExp?: number;
}

/**
 * Sends frames to connections. Implementations retry throttling (429) and server errors (5xx) with
 * full-jitter backoff and report a vanished connection (410) as `gone` without throwing.
 */
export interface Delivery {
  /**
   * Posts `frame` to one target. The fan-out hands the *same* frame object to every target of one
   * message, which lets a delivery merge targets that share a destination (see `RoutingDelivery`).
   */
  post(target: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome>;
  /** Closes a connection from the server side. A connection that is already gone is not an error. */
  close(connectionId: string): Promise<void>;
}

/** Publishes one frame to an MQTT topic that many clients subscribe to (announcements): IoT fans it out. */
export interface TopicPublisher {
  publish(topic: string, frame: ServerFrame): Promise<DeliveryOutcome>;
}

/** One batch of a large fan-out: the frame and the connections it goes to. */
export interface FanoutBatch {
  /** Unique per message and slice of its audience (and retry attempt); the worker's idempotency key. */
  batchId: string;
  frame: ServerFrame;
  targets: DeliveryTarget[];
  /** 1 for a first delivery, n for the (n-1)th re-queue of failed targets. */
  attempt: number;
}

/** Where large fan-outs go (SQS in AWS, an in-process queue in the emulator); the worker handler drains it. */
export interface FanoutQueue {
  /**
   * Queues every batch.
   * @throws {FanoutEnqueueError} the queue refused some batches, named; the others are queued
   * @throws any other error: the call failed, and which batches were queued is unknown
   */
  enqueue(batches: readonly FanoutBatch[]): Promise<void>;
}

/** The fan-out queue refused some batches of an enqueue (after the SDK's own retries); the others are queued. */
export class FanoutEnqueueError extends Error {
  override readonly name = 'FanoutEnqueueError';
  constructor(readonly failed: { batchId: string; code: string | undefined; message: string | undefined }[]) {
    super(`The queue refused ${failed.length} fan-out batch(es): ${failed.map((f) => f.code ?? '?').join(', ')}`);
  }
}
