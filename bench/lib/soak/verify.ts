/**
 * The soak's verdict on delivery, from what it wrote down (`records.ts`).
 *
 * Chat, for each client, each membership of a room and each message of that room with a seq after the
 * membership's first join (not the client's own):
 * - **required**: the membership was still open when the message was acknowledged (no `leave` sent before
 *   the ack). A required message must have reached the client, live or through the history it reads after a
 *   reconnect (catch-up); one that did neither is **lost**.
 * - **live expected**: required, and some join of the membership on connection C has a seq below the
 *   message's, and C answered a request that was sent after the message's ack. The service writes a room's
 *   frames to members before it acknowledges the send, and answers a request after what it wrote earlier to
 *   the same connection, so C must have received the frame. A live-expected message that arrived only from
 *   history is **missed live**: catch-up hid a lost delivery. This ties each expectation to an observed order
 *   of events instead of to a timing guess, so a slow machine cannot fail it.
 * - **duplicated**: the same message arrived live more than once at one client (a live copy plus a history
 *   copy is the documented overlap of a resume, not a duplicate).
 *
 * Notifications, for each (notification, user): it is in the user's inbox exactly once; it arrived live at
 * most once; and if `notify` reported a live delivery while the user had a connection that was open before
 * the call and answered a request sent after it, it arrived live (else **missed live**).
 *
 * The table: every acknowledged message is stored under its acknowledged seq and id, and no other message
 * is stored in the soak's rooms (a retried send stored twice would show here).
 */
import type { StoredMessage } from '@viba-realtime/lambdas';
import type { SoakClient } from './client.js';
import type { Membership, SentMessage, SentNotification } from './records.js';

export interface ChatVerdict {
  /** Acknowledged messages. */
  messages: number;
  /** Messages acknowledged only after a resend (their first ack was cut off by a drop). */
  resent: number;
  /** Resends answered as duplicates (the first attempt had been stored). */
  duplicateAcks: number;
  /** (member, message) pairs that had to arrive. */
  required: number;
  deliveredLive: number;
  /** Required pairs that arrived through history after a reconnect only. */
  viaCatchUp: number;
  lost: number;
  /** Pairs that arrived live more than once. */
  duplicated: number;
  liveExpected: number;
  missedLive: number;
  /** Pairs that were not required but arrived anyway (sent around a leave). */
  optionalReceived: number;
  /** Received seqs no acknowledged message has. */
  unknownReceived: number;
  /** A received seq whose id is not the acknowledged message's. */
  idMismatches: number;
  /** Up to 20 descriptions of lost, duplicated or missed messages. */
  examples: string[];
}

export interface NotificationVerdict {
  /** (notification, user) pairs stored. */
  recipients: number;
  deliveredLive: number;
  liveExpected: number;
  missedLive: number;
  /** Arrived live more than once. */
  duplicatedLive: number;
  /** Not in the user's inbox at the end. */
  missingFromInbox: number;
  /** Listed more than once in the inbox. */
  duplicatedInInbox: number;
  /** Inbox entries or live frames of no notification the backend sent. */
  unknown: number;
  examples: string[];
}

export interface TableVerdict {
  rooms: number;
  storedMessages: number;
  /** Acknowledged messages stored with their seq and id. */
  matched: number;
  /** Acknowledged but not stored as acknowledged. */
  missing: number;
  /** Stored but never acknowledged (or stored twice: a second copy of a known client id). */
  unknown: number;
  /** Client ids stored under more than one seq. */
  storedTwice: number;
  examples: string[];
}

const MAX_EXAMPLES = 20;

function byRoom(messages: readonly SentMessage[]): Map<string, SentMessage[]> {
  const rooms = new Map<string, SentMessage[]>();
  for (const m of messages) {
    const list = rooms.get(m.room);
    if (list) list.push(m);
    else rooms.set(m.room, [m]);
  }
  for (const list of rooms.values()) list.sort((a, b) => a.seq - b.seq);
  return rooms;
}

/** A membership with its joins and its client's connections, for examples (times in s since `origin`). */
export function describeMembership(client: SoakClient, membership: Membership, origin: number): string {
  const t = (ms: number | undefined) =>
    ms === undefined || !Number.isFinite(ms) ? '-' : ((ms - origin) / 1000).toFixed(2);
  const joins = membership.segments.map((s) => `g${s.generation}@seq${s.joinSeq}/${t(s.joinAckedAt)}`).join(' ');
  const spans = client.spans
    .map((s) => `g${s.generation} ${t(s.openedAt)}-${t(s.closedAt)} answered<=${t(s.lastAnsweredSentAt)}`)
    .join('; ');
  return `client ${client.index} (${client.channel}) room ${membership.room} from seq ${membership.startSeq ?? '-'}, joins ${joins || '-'}${membership.leaveSentAt === undefined ? '' : `, left ${t(membership.leaveSentAt)}`}; connections ${spans}`;
}

/** The chat verdict (see the module comment). Times in examples are seconds since `origin`. */
export function verifyChat(clients: readonly SoakClient[], messages: readonly SentMessage[], origin = 0): ChatVerdict {
  const verdict: ChatVerdict = {
    messages: messages.length,
    resent: messages.filter((m) => m.attempts > 1).length,
    duplicateAcks: messages.filter((m) => m.duplicateAck).length,
    required: 0,
    deliveredLive: 0,
    viaCatchUp: 0,
    lost: 0,
    duplicated: 0,
    liveExpected: 0,
    missedLive: 0,
    optionalReceived: 0,
    unknownReceived: 0,
    idMismatches: 0,
    examples: [],
  };
  const example = (text: string) => {
    if (verdict.examples.length < MAX_EXAMPLES) verdict.examples.push(text);
  };
  const rooms = byRoom(messages);
  for (const client of clients) {
    for (const membership of client.memberships) {
      const start = membership.startSeq;
      if (start === undefined) continue;
      const list = rooms.get(membership.room) ?? [];
      const known = new Set<number>();
      for (const message of list) {
        known.add(message.seq);
        if (message.seq <= start || message.sender === client.index) continue;
        const receipt = membership.received.get(message.seq);
        if (receipt && receipt.id !== message.id) verdict.idMismatches++;
        const live = receipt?.id === message.id ? receipt.live : 0;
        const history = receipt?.id === message.id ? receipt.history : 0;
        const what = `client ${client.index} (${client.channel}) room ${message.room} seq ${message.seq} (${message.id})`;
        if (live > 1) {
          verdict.duplicated++;
          example(`duplicated x${live}: ${what}`);
        }
        const left = membership.leaveSentAt;
        const required = left === undefined || message.ackedAt < left;
        if (!required) {
          if (live + history > 0) verdict.optionalReceived++;
          continue;
        }
        verdict.required++;
        if (live > 0) verdict.deliveredLive++;
        else if (history > 0) verdict.viaCatchUp++;
        else {
          verdict.lost++;
          example(
            `lost: ${what}, sent ${((message.sentAt - origin) / 1000).toFixed(2)} acked ${((message.ackedAt - origin) / 1000).toFixed(2)}; ${describeMembership(client, membership, origin)}`,
          );
        }
        const liveExpected = membership.segments.some((segment) => {
          const span = client.spans[segment.generation];
          return message.seq > segment.joinSeq && span !== undefined && message.ackedAt < span.lastAnsweredSentAt;
        });
        if (liveExpected) {
          verdict.liveExpected++;
          if (live === 0) {
            verdict.missedLive++;
            example(`missed live: ${what}`);
          }
        }
      }
      for (const seq of membership.received.keys()) if (seq > start && !known.has(seq)) verdict.unknownReceived++;
    }
  }
  return verdict;
}

/** The notification verdict (see the module comment). Needs each client's inbox read at the end. */
export function verifyNotifications(
  clients: readonly SoakClient[],
  notifications: readonly SentNotification[],
): NotificationVerdict {
  const verdict: NotificationVerdict = {
    recipients: notifications.length,
    deliveredLive: 0,
    liveExpected: 0,
    missedLive: 0,
    duplicatedLive: 0,
    missingFromInbox: 0,
    duplicatedInInbox: 0,
    unknown: 0,
    examples: [],
  };
  const example = (text: string) => {
    if (verdict.examples.length < MAX_EXAMPLES) verdict.examples.push(text);
  };
  const sentTo = new Map<number, Set<string>>();
  for (const n of notifications) {
    const client = clients[n.user];
    if (!client) continue;
    const ids = sentTo.get(n.user) ?? new Set<string>();
    sentTo.set(n.user, ids);
    ids.add(n.id);
    const what = `client ${n.user} (${client.channel}) notification ${n.id}`;
    const live = client.notifications.get(n.id)?.live ?? 0;
    if (live > 0) verdict.deliveredLive++;
    if (live > 1) {
      verdict.duplicatedLive++;
      example(`duplicated live x${live}: ${what}`);
    }
    const listed = client.inbox.get(n.id) ?? 0;
    if (listed === 0) {
      verdict.missingFromInbox++;
      example(`not in the inbox: ${what}`);
    } else if (listed > 1) {
      verdict.duplicatedInInbox++;
      example(`in the inbox x${listed}: ${what}`);
    }
    const liveExpected =
      n.delivered > 0 &&
      client.spans.some((span) => span.openedAt < n.startedAt && span.lastAnsweredSentAt > n.endedAt);
    if (liveExpected) {
      verdict.liveExpected++;
      if (live === 0) {
        verdict.missedLive++;
        example(`missed live: ${what}`);
      }
    }
  }
  clients.forEach((client, index) => {
    const ids = sentTo.get(index) ?? new Set<string>();
    for (const id of client.inbox.keys()) if (!ids.has(id)) verdict.unknown++;
    for (const id of client.notifications.keys()) if (!ids.has(id)) verdict.unknown++;
  });
  return verdict;
}

/** Compares the table's messages of the soak's rooms with the acknowledged ones. */
export function verifyTable(
  stored: ReadonlyMap<string, readonly StoredMessage[]>,
  messages: readonly SentMessage[],
): TableVerdict {
  const verdict: TableVerdict = {
    rooms: stored.size,
    storedMessages: 0,
    matched: 0,
    missing: 0,
    unknown: 0,
    storedTwice: 0,
    examples: [],
  };
  const example = (text: string) => {
    if (verdict.examples.length < MAX_EXAMPLES) verdict.examples.push(text);
  };
  const rooms = byRoom(messages);
  for (const [room, list] of stored) {
    verdict.storedMessages += list.length;
    const bySeq = new Map(list.map((m) => [m.seq, m]));
    const acked = rooms.get(room) ?? [];
    const ackedBySeq = new Map(acked.map((m) => [m.seq, m]));
    for (const message of acked) {
      const row = bySeq.get(message.seq);
      if (row && row.id === message.id && row.ref === message.clientId) verdict.matched++;
      else {
        verdict.missing++;
        example(`acked, not stored: room ${room} seq ${message.seq} ${message.clientId}`);
      }
    }
    const seqsByRef = new Map<string, number[]>();
    for (const row of list) {
      seqsByRef.set(row.ref, [...(seqsByRef.get(row.ref) ?? []), row.seq]);
      const known = ackedBySeq.get(row.seq);
      if (!known || known.id !== row.id) {
        verdict.unknown++;
        example(`stored, never acked: room ${room} seq ${row.seq} ${row.ref}`);
      }
    }
    for (const [ref, seqs] of seqsByRef) {
      if (seqs.length > 1) {
        verdict.storedTwice++;
        example(`stored twice: room ${room} ${ref} at seqs ${seqs.join(', ')}`);
      }
    }
  }
  for (const room of rooms.keys()) {
    if (!stored.has(room)) {
      const count = rooms.get(room)?.length ?? 0;
      verdict.missing += count;
      example(`room ${room} has no stored messages (${count} acked)`);
    }
  }
  return verdict;
}
