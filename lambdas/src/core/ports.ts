/**
 * The two ports of the core: where state lives ({@link Store}) and how frames reach connections
 * ({@link Delivery}). The core knows nothing of DynamoDB, API Gateway or IoT; adapters implement these.
 */
import type { JsonObject, RoomVisibility, ServerFrame } from '@viba-realtime/protocol';

/** Milliseconds since the epoch. Injected so tests can move time without sleeping. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** The channel a connection came in on. */
export type Channel = 'ws';

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
  /** Epoch seconds after which the record is expired (TTL); at most API Gateway's 2-hour cut plus margin. */
  expiresAt: number;
}

export interface RoomRecord {
  room: string;
  visibility: RoomVisibility;
  owner: string;
  /** Epoch ms. */
  createdAt: number;
  /** Highest seq handed out so far (0 for a new room). */
  lastSeq: number;
}

export interface SubscriptionRecord {
  room: string;
  connectionId: string;
  sub: string;
  /** Epoch ms; orders a user's connections in a room for presence. */
  subscribedAt?: number;
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
  putConnection(connection: ConnectionRecord): Promise<void>;
  getConnection(connectionId: string): Promise<ConnectionRecord | undefined>;
  /** Deletes the connection and all its subscriptions; returns the rooms it was subscribed to. Idempotent. */
  deleteConnection(connectionId: string): Promise<string[]>;
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

/**
 * Sends frames to connections. Implementations retry throttling (429) and server errors (5xx) with
 * full-jitter backoff and report a vanished connection (410) as `gone` without throwing.
 */
export interface Delivery {
  post(connectionId: string, frame: ServerFrame): Promise<DeliveryOutcome>;
  /** Closes a connection from the server side. A connection that is already gone is not an error. */
  close(connectionId: string): Promise<void>;
}
