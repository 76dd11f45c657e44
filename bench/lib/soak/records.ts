/**
 * What the soak writes down while it runs, for the verdict at the end: the ground truth (every message the
 * service acknowledged, every notification the backend was told it stored) and each client's side (its
 * connections, its memberships of rooms, what it received and how).
 *
 * Times are `performance.now()` of the load generator, one clock for everything.
 */

/** A chat message the service acknowledged (the sender's `ack`, possibly after retries). */
export interface SentMessage {
  room: string;
  seq: number;
  /** Server id. */
  id: string;
  /** The sender's client id (the send's `id`). */
  clientId: string;
  /** Index of the sending client. */
  sender: number;
  /** When the first attempt was sent. */
  sentAt: number;
  /** When the (last attempt's) ack arrived. */
  ackedAt: number;
  /** Attempts it took (a reconnect storm can cut the first one's ack off). */
  attempts: number;
  /** Whether the acknowledged attempt was answered as a duplicate of an earlier one. */
  duplicateAck: boolean;
}

/** A notification the backend's `notify` stored for one user. */
export interface SentNotification {
  id: string;
  user: number;
  key: string;
  /** When the `notify` call started and returned. */
  startedAt: number;
  endedAt: number;
  /** Connections it was delivered to live, as `notify` reported. */
  delivered: number;
}

/** One connection of a client. */
export interface ConnectionSpan {
  /** 0, 1, 2, ... per client. */
  generation: number;
  openedAt: number;
  /**
   * The latest send time of a request answered on this connection. The service writes a room's frame to a
   * member's connection before it acknowledges the send to the sender, and answers a request after everything
   * written to that connection before the request arrived: so every message acknowledged before this time
   * must have reached this connection if it was subscribed (see `verify.ts`).
   */
  lastAnsweredSentAt: number;
  closedAt?: number;
}

/** One `join` that was acknowledged on a connection: from its seq on, room traffic reaches that connection. */
export interface Segment {
  generation: number;
  /** The room's latest seq in the join's ack. */
  joinSeq: number;
  joinAckedAt: number;
}

/** How often one message reached one client, and by which path. */
export interface Receipt {
  id: string;
  /** Live deliveries (a chat frame pushed to the connection). */
  live: number;
  /** Copies read from history while catching up after a reconnect. */
  history: number;
}

/**
 * A client's membership of a room, from its first `join` to its `leave` (or the end of the run), across
 * reconnects: after a reconnect the client rejoins and reads what it missed from history.
 */
export interface Membership {
  room: string;
  /** Joined by churn (left again later), rather than a home room. */
  churn: boolean;
  joinSentAt: number;
  /** The seq in the first acknowledged join: every message after it is the client's to receive. Undefined
   * until a join is acknowledged. */
  startSeq?: number;
  segments: Segment[];
  leaveSentAt?: number;
  leaveAckedAt?: number;
  /** By seq. */
  received: Map<number, Receipt>;
  /** Seqs of the client's own messages (it gets an ack, not a chat frame). */
  own: Set<number>;
}

/** How often a notification reached its user live. */
export interface NotificationReceipt {
  live: number;
  /** The connection it arrived on first. */
  generation: number;
}
