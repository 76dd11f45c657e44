/**
 * Wire protocol v1: the JSON frames a client sends and the frames the server answers with.
 * docs/PROTOCOL.md documents every frame and field with examples.
 */
import type { ErrorCode } from './errors.js';

/** A JSON object, the only allowed shape of a message `body`. */
export type JsonObject = { [key: string]: unknown };

/** Room visibility: anyone may join a public room; only members may join a private one. */
export type RoomVisibility = 'public' | 'private';

/** Actions a client may send; each one is an API Gateway route key (see routes.ts). */
export const CLIENT_ACTIONS = [
  'join',
  'leave',
  'send',
  'history',
  'ping',
  'inbox',
  'markRead',
  'markAllRead',
  'announcements',
  'announce',
] as const;
export type ClientAction = (typeof CLIENT_ACTIONS)[number];

/** Join a room. A room that does not exist is created, owned by the caller, public unless `body.visibility`
 * says `private`. */
export interface JoinFrame {
  action: 'join';
  room: string;
  id?: string;
  body?: { visibility?: RoomVisibility };
}

/** Stop receiving a room's messages on this connection (membership of a private room is kept). */
export interface LeaveFrame {
  action: 'leave';
  room: string;
  id?: string;
}

/** Send a chat message. `id` is required: it makes the send idempotent (a resend returns the same ack). */
export interface SendFrame {
  action: 'send';
  room: string;
  id: string;
  body: JsonObject;
}

/** Read stored messages. `after` pages forward from a seq (resume); otherwise pages backward from `before`
 * (default: the newest). */
export interface HistoryFrame {
  action: 'history';
  room: string;
  id?: string;
  body?: { after?: number; before?: number; limit?: number };
}

/** Keep-alive and round-trip check. */
export interface PingFrame {
  action: 'ping';
  id?: string;
}

/** Read the caller's notification inbox, newest first. The answer carries the unread count, so a client asks
 * for it right after connecting to learn what it missed. `before` pages on from a notification id. */
export interface InboxFrame {
  action: 'inbox';
  id?: string;
  body?: { before?: string; limit?: number; unreadOnly?: boolean };
}

/** Mark notifications of the caller's inbox read (ids of `notification` frames). Unknown ids are ignored. */
export interface MarkReadFrame {
  action: 'markRead';
  id?: string;
  body: { ids: string[] };
}

/** Mark every notification of the caller's inbox read. */
export interface MarkAllReadFrame {
  action: 'markAllRead';
  id?: string;
}

/** Read the announcements the caller can see (to everyone and to the caller's groups), oldest first, from
 * `since` (epoch ms, inclusive) or `after` an announcement id (exclusive); default: the retention window. */
export interface AnnouncementsFrame {
  action: 'announcements';
  id?: string;
  body?: { since?: number; after?: string; limit?: number };
}

/** Announce to everyone, or to one Cognito `group`. Only users in the `admin` group may (and the backend
 * publisher). `id` makes it idempotent, like a `send`. */
export interface AnnounceFrame {
  action: 'announce';
  id: string;
  group?: string;
  body: JsonObject;
}

export type ClientFrame =
  | JoinFrame
  | LeaveFrame
  | SendFrame
  | HistoryFrame
  | PingFrame
  | InboxFrame
  | MarkReadFrame
  | MarkAllReadFrame
  | AnnouncementsFrame
  | AnnounceFrame;

/** A chat message as delivered to room members and returned by history. */
export interface ChatFrame {
  type: 'chat';
  /** Server message id. */
  id: string;
  room: string;
  /** The sender's user id (Cognito `sub`), set by the server from the token. */
  from: string;
  /** Per-room sequence number: strictly increasing, starting at 1. */
  seq: number;
  /** Server time the message was stored, epoch milliseconds. */
  ts: number;
  body: JsonObject;
  /** The sender's client id. */
  ref: string;
}

/** Success answer to a client frame. For `send`: the stored message's id and seq. For `join`: the room's
 * latest seq (0 if empty), so the client knows where it stands. */
export interface AckFrame {
  type: 'ack';
  action: 'join' | 'leave' | 'send' | 'markRead' | 'markAllRead' | 'announce';
  ref?: string;
  /** For `join`, `leave` and `send`: the room. */
  room?: string;
  id?: string;
  seq?: number;
  ts: number;
  /** For `send`: true when this client id was already stored and nothing new was sent. */
  duplicate?: boolean;
  /** For `join`: the room's visibility. */
  visibility?: RoomVisibility;
  /** For `markRead` and `markAllRead`: the unread notifications left. */
  unread?: number;
}

/** A page of stored messages, always in ascending `seq` order. */
export interface HistoryPageFrame {
  type: 'history';
  ref?: string;
  room: string;
  messages: ChatFrame[];
  /** Cursor for the next page in the same direction: pass it as `after` (forward) or `before` (backward). */
  next?: { after: number } | { before: number };
}

/** Someone joined or left a room (sent to the room's other connections). */
export interface PresenceFrame {
  type: 'presence';
  room: string;
  user: string;
  state: 'joined' | 'left';
  ts: number;
}

export interface PongFrame {
  type: 'pong';
  ref?: string;
  ts: number;
}

/** A typed failure. `code` is stable; `message` is for people. `ref` echoes the client id when known. */
export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  ref?: string;
  action?: string;
  room?: string;
  details?: Record<string, unknown>;
}

/** A notification from the app's backend to one user: delivered live to each of the user's connections and
 * kept in the inbox (unread until marked) for the retention time the backend chose. */
export interface NotificationFrame {
  type: 'notification';
  /** Server id; ids sort by time. */
  id: string;
  /** Server time it was stored, epoch milliseconds. */
  ts: number;
  body: JsonObject;
  read: boolean;
}

/** A page of the inbox, newest first, with the unread count. */
export interface InboxPageFrame {
  type: 'inbox';
  ref?: string;
  notifications: NotificationFrame[];
  /** Unread notifications in the whole inbox (not only this page). */
  unread: number;
  /** Present when older notifications exist: pass it as `before`. */
  next?: { before: string };
}

/** An announcement to everyone or to one Cognito group. */
export interface AnnouncementFrame {
  type: 'announcement';
  /** Server id; ids sort by time. */
  id: string;
  ts: number;
  /** Who announced: an admin's `sub`, or `backend` for the backend publisher. */
  from: string;
  /** The group it was for; absent for everyone. */
  group?: string;
  body: JsonObject;
}

/** A page of announcements, oldest first. */
export interface AnnouncementsPageFrame {
  type: 'announcements';
  ref?: string;
  announcements: AnnouncementFrame[];
  /** Present when more may follow: pass it as `after`. */
  next?: { after: string };
}

export type ServerFrame =
  | ChatFrame
  | AckFrame
  | HistoryPageFrame
  | PresenceFrame
  | PongFrame
  | ErrorFrame
  | NotificationFrame
  | InboxPageFrame
  | AnnouncementFrame
  | AnnouncementsPageFrame;

/** Who the backend publisher is in `from` fields (announcements, chat sent without `from`). */
export const BACKEND_SENDER = 'backend';

/** The Cognito group whose members may `announce` from a client. */
export const ADMIN_GROUP = 'admin';
