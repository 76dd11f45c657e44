/**
 * One soak client: one user with one connection at a time, on one channel. It joins rooms, sends, leaves,
 * pings, and when its connection drops it does what a well-behaved client does (and what the SDK does):
 * reconnect, rejoin its rooms, read what it missed from history after the last seq it holds without a gap,
 * and resend the message whose ack it never got, with the same id. Everything it receives is written down
 * (see `records.ts`) for the verdict in `verify.ts`.
 *
 * One operation at a time per client (`busy`): order between a client's own requests is then never in
 * question, and a drop interrupts at most one of them.
 */
import type { AckFrame, ChatFrame, HistoryPageFrame, InboxPageFrame, ServerFrame } from '@viba-realtime/protocol';
import { type Channel, ConnectRefusedError, type Link, type LinkEndpoints, openLink } from './links.js';
import type { Random } from './random.js';
import type { ConnectionSpan, Membership, NotificationReceipt, Receipt, SentMessage } from './records.js';

/** A request was cut off by its connection closing. */
export class LinkDroppedError extends Error {
  override readonly name = 'LinkDroppedError';
}

/** A request got no answer in time. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
}

/** An error frame answered a request. */
export class ErrorFrameError extends Error {
  override readonly name = 'ErrorFrameError';
  constructor(
    readonly code: string,
    readonly action: string,
  ) {
    super(`${action} answered ${code}`);
  }
}

/** Counts shared by every client (the report's error columns). */
export interface SoakCounters {
  connectAttempts: number;
  /** Failed connection attempts, by reason (`http-503`, `connack-5`, `timeout`, ...). */
  refusals: Record<string, number>;
  /** Error frames answering requests, by `action:code`. */
  errorFrames: Record<string, number>;
  requestTimeouts: number;
  /** Timed-out requests whose answer came after all (slow, not lost). */
  lateAnswers: number;
  /** Connections that closed outside a storm and outside the final close. */
  unexpectedDrops: number;
  /** Answers to no request waiting for one: over MQTT, an answer to a request of the previous connection arrives
   * on the user's responses topic after a reconnect. */
  orphanAnswers: number;
  /** Frames that are not ours (e.g. API Gateway's own `Internal server error`), or not JSON. */
  unknownFrames: number;
  /** Error frames pushed without a request. */
  pushedErrors: number;
  /** A seq whose message id differed between two receipts (would mean two messages under one seq). */
  seqConflicts: number;
  /** Chat frames of a room the client never joined. */
  strayChats: number;
  presenceFrames: number;
  /** Messages read from history while catching up after a reconnect. */
  catchUpMessages: number;
}

export function newCounters(): SoakCounters {
  return {
    connectAttempts: 0,
    refusals: {},
    errorFrames: {},
    requestTimeouts: 0,
    lateAnswers: 0,
    unexpectedDrops: 0,
    orphanAnswers: 0,
    unknownFrames: 0,
    pushedErrors: 0,
    seqConflicts: 0,
    strayChats: 0,
    presenceFrames: 0,
    catchUpMessages: 0,
  };
}

/** What every client shares: endpoints, counters, the clock and the callbacks into the run. */
export interface ClientContext {
  endpoints: LinkEndpoints;
  counters: SoakCounters;
  now: () => number;
  random: Random;
  /** Whether a storm is under way (a drop then is expected). */
  inStorm: () => boolean;
  /** A message was acknowledged. */
  onAcked: (message: SentMessage) => void;
  /** The client is connected again, rejoined and caught up after a drop. */
  onRecovered: (client: SoakClient) => void;
}

const REQUEST_TIMEOUT_MS = 60_000;
const HISTORY_PAGE = 100;
const INBOX_PAGE = 100;
/** Full-jitter backoff between reconnect attempts, as the SDK's. */
const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 5_000;

type ClientState = 'idle' | 'ready' | 'recovering' | 'closing' | 'closed';

interface PendingRequest {
  resolve: (frame: ServerFrame) => void;
  reject: (error: Error) => void;
  sentAt: number;
  timer: NodeJS.Timeout;
}

interface PendingSend {
  room: string;
  clientId: string;
  body: Record<string, unknown>;
  sentAt: number;
  attempts: number;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class SoakClient {
  state: ClientState = 'idle';
  /** An operation is running (the scheduler picks idle clients only). */
  busy = false;
  readonly spans: ConnectionSpan[] = [];
  /** Rooms the client means to be in (joined, or joining), by name. */
  readonly rooms = new Map<string, Membership>();
  /** Every membership ever, in order. */
  readonly memberships: Membership[] = [];
  readonly notifications = new Map<string, NotificationReceipt>();
  /** Notification ids read from the inbox at the end, with how often each was listed. */
  readonly inbox = new Map<string, number>();
  /** Live chat frames of a room the client had left (in flight at the leave, or later). */
  chatsAfterLeave = 0;
  /** When the client last sent a request (heartbeats go to idle ones). */
  lastRequestAt = 0;
  /** When the client was last ready again after a drop. */
  recoveredAt = 0;
  readonly #lastByRoom = new Map<string, Membership>();
  readonly #requests = new Map<string, PendingRequest>();
  /** Ids of requests that timed out, until their answer comes. */
  readonly #timedOut = new Set<string>();
  #link: Link | undefined;
  #recovery: Promise<void> | undefined;
  #pendingSend: PendingSend | undefined;
  #counter = 0;
  #sent = 0;

  constructor(
    readonly index: number,
    readonly sub: string,
    readonly channel: Channel,
    readonly protocolVersion: 4 | 5,
    readonly token: string,
    private readonly context: ClientContext,
  ) {}

  /** The current connection's generation (0 for the first), or -1 before any. */
  get generation(): number {
    return this.spans.length - 1;
  }

  /** The rooms joined with an acknowledged join (sends go there). */
  joinedRooms(): Membership[] {
    return [...this.rooms.values()].filter((m) => m.startSeq !== undefined && m.segments.length > 0);
  }

  /** First connection. Rejects with {@link ConnectRefusedError}; the ramp counts it and retries. */
  async connect(): Promise<void> {
    await this.#open();
    this.state = 'ready';
  }

  /** Joins a room (a home room at the start, or by churn). */
  async join(room: string, churn: boolean): Promise<void> {
    await this.#operation(async () => {
      const membership: Membership = {
        room,
        churn,
        joinSentAt: this.context.now(),
        segments: [],
        received: new Map(),
        own: new Set(),
      };
      this.rooms.set(room, membership);
      this.memberships.push(membership);
      this.#lastByRoom.set(room, membership);
      try {
        await this.#joinOnce(membership);
      } catch (error) {
        // Refused (not dropped): the client is not in the room.
        if (error instanceof ErrorFrameError) this.rooms.delete(room);
        throw error;
      }
    });
  }

  /** Leaves a room it is in. */
  async leave(room: string): Promise<void> {
    await this.#operation(async () => {
      const membership = this.rooms.get(room);
      if (!membership) return;
      membership.leaveSentAt = this.context.now();
      // From here on the client does not count on the room: a drop before the ack ends the subscription too.
      this.rooms.delete(room);
      const answer = await this.request({ action: 'leave', room });
      if (answer.type !== 'ack') throw unexpected('leave', answer);
      membership.leaveAckedAt = this.context.now();
    });
  }

  /** Sends one chat message to a joined room; a drop leaves it pending, resent after the reconnect. */
  async send(room: string): Promise<void> {
    await this.#operation(async () => {
      const n = ++this.#sent;
      this.#pendingSend = {
        room,
        clientId: `m-${this.index}-${n}`,
        body: { text: `soak ${this.index}/${n}`, n },
        sentAt: this.context.now(),
        attempts: 0,
      };
      await this.#completeSend();
    });
  }

  /** A heartbeat (and, at the end, proof that everything written to the connection before has arrived). */
  async ping(): Promise<void> {
    await this.#operation(async () => {
      const answer = await this.request({ action: 'ping' });
      if (answer.type !== 'pong') throw unexpected('ping', answer);
    });
  }

  /** Reads the whole inbox into {@link inbox}. */
  async readInbox(): Promise<void> {
    await this.#operation(async () => {
      this.inbox.clear();
      let before: string | undefined;
      do {
        const answer = await this.request({
          action: 'inbox',
          body: { limit: INBOX_PAGE, ...(before === undefined ? {} : { before }) },
        });
        if (answer.type !== 'inbox') throw unexpected('inbox', answer);
        const page = answer as InboxPageFrame;
        for (const n of page.notifications) this.inbox.set(n.id, (this.inbox.get(n.id) ?? 0) + 1);
        before = page.next?.before;
      } while (before !== undefined);
    });
  }

  /** Cuts the socket (a client-side storm). The close event then starts the recovery. */
  cut(): void {
    this.#link?.cut();
  }

  /** Closes the connection cleanly for good. */
  async close(): Promise<void> {
    this.state = 'closing';
    await this.#link?.close();
    this.state = 'closed';
  }

  /** Sends a request; resolves with its answer (an error frame included). */
  request(frame: Record<string, unknown> & { action: string }, id?: string): Promise<ServerFrame> {
    const link = this.#link;
    if (!link) return Promise.reject(new LinkDroppedError('not connected'));
    const requestId = id ?? `r-${this.index}-${++this.#counter}`;
    const sentAt = this.context.now();
    this.lastRequestAt = sentAt;
    return new Promise<ServerFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(requestId);
        this.#timedOut.add(requestId);
        this.context.counters.requestTimeouts++;
        reject(new RequestTimeoutError(`${frame.action} ${requestId} unanswered after ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.#requests.set(requestId, { resolve, reject, sentAt, timer });
      link.send({ ...frame, id: requestId });
    });
  }

  async #operation(run: () => Promise<void>): Promise<void> {
    this.busy = true;
    try {
      await run();
    } catch (error) {
      // A drop is the recovery's business (it resends, rejoins); error frames were counted when they came, and
      // a request that timed out is counted with its answer if it comes late (`lateAnswers`).
      if (!(error instanceof LinkDroppedError) && !(error instanceof RequestTimeoutError)) throw error;
    } finally {
      this.busy = false;
    }
  }

  async #open(): Promise<void> {
    this.context.counters.connectAttempts++;
    const generation = this.spans.length;
    const link = await openLink(
      this.context.endpoints,
      { sub: this.sub, token: this.token, channel: this.channel, protocolVersion: this.protocolVersion },
      (frame, pushed) => this.#onFrame(frame, pushed, generation),
    );
    this.spans.push({ generation, openedAt: this.context.now(), lastAnsweredSentAt: Number.NEGATIVE_INFINITY });
    this.#link = link;
    void link.closed.then(() => this.#onClosed(generation));
  }

  #onClosed(generation: number): void {
    const span = this.spans[generation];
    if (span) span.closedAt = this.context.now();
    if (generation !== this.generation) return;
    this.#link = undefined;
    for (const [id, pending] of this.#requests) {
      clearTimeout(pending.timer);
      pending.reject(new LinkDroppedError(`connection closed before ${id} was answered`));
    }
    this.#requests.clear();
    if (this.state === 'closing' || this.state === 'closed') return;
    if (!this.context.inStorm()) this.context.counters.unexpectedDrops++;
    if (this.state !== 'recovering') this.#recovery = this.#recover();
  }

  /** Resolves once the client is not recovering from a drop (at once when it is not). */
  async whenRecovered(): Promise<void> {
    while (this.#recovery) {
      const recovery = this.#recovery;
      await recovery;
      if (this.#recovery === recovery) this.#recovery = undefined;
    }
  }

  async #recover(): Promise<void> {
    this.state = 'recovering';
    for (let attempt = 0; ; attempt++) {
      if (this.state !== 'recovering') return;
      try {
        if (!this.#link) await this.#open();
        await this.#resume();
        this.state = 'ready';
        this.recoveredAt = this.context.now();
        this.context.onRecovered(this);
        return;
      } catch (error) {
        if (error instanceof ConnectRefusedError) {
          const key = `${this.channel} ${error.reason}`;
          this.context.counters.refusals[key] = (this.context.counters.refusals[key] ?? 0) + 1;
        }
        // The storm's reconnect is immediate (everyone at once); later attempts back off with full jitter.
        await delay(this.context.random.next() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt));
      }
    }
  }

  /** After a reconnect: rejoin every room, catch up on each, resend the unacknowledged message. */
  async #resume(): Promise<void> {
    await Promise.all([...this.rooms.values()].map((membership) => this.#rejoin(membership)));
    if (this.#pendingSend) await this.#completeSend();
  }

  async #rejoin(membership: Membership): Promise<void> {
    const hadStart = membership.startSeq !== undefined;
    await this.#joinOnce(membership);
    if (!hadStart) return;
    let after = contiguousSeq(membership);
    for (;;) {
      const answer = await this.request({
        action: 'history',
        room: membership.room,
        body: { after, limit: HISTORY_PAGE },
      });
      if (answer.type !== 'history') throw unexpected('history', answer);
      const page = answer as HistoryPageFrame;
      for (const message of page.messages) this.#receipt(membership, message).history++;
      this.context.counters.catchUpMessages += page.messages.length;
      const next = page.next && 'after' in page.next ? page.next.after : undefined;
      if (next === undefined) break;
      after = next;
    }
  }

  async #joinOnce(membership: Membership): Promise<void> {
    const answer = await this.request({ action: 'join', room: membership.room });
    if (answer.type !== 'ack') throw unexpected('join', answer);
    const seq = (answer as AckFrame).seq ?? 0;
    membership.startSeq ??= seq;
    membership.segments.push({ generation: this.generation, joinSeq: seq, joinAckedAt: this.context.now() });
  }

  async #completeSend(): Promise<void> {
    for (;;) {
      const pending = this.#pendingSend;
      if (!pending) return;
      pending.attempts++;
      const answer = await this.request(
        { action: 'send', room: pending.room, body: pending.body },
        pending.clientId,
      ).catch((error: unknown) => {
        // Unanswered: the attempt may or may not have been stored; the resend with the same id settles it.
        if (error instanceof RequestTimeoutError) return undefined;
        throw error;
      });
      if (answer === undefined) continue;
      if (answer.type === 'error' && answer.code === 'conflict') {
        // The first attempt is still running on the server: "retry later" (PROTOCOL.md).
        await delay(200);
        continue;
      }
      if (answer.type !== 'ack') {
        this.#pendingSend = undefined;
        throw unexpected('send', answer);
      }
      const ack = answer as AckFrame;
      this.#pendingSend = undefined;
      const membership = this.rooms.get(pending.room) ?? this.#lastByRoom.get(pending.room);
      if (ack.seq !== undefined) membership?.own.add(ack.seq);
      this.context.onAcked({
        room: pending.room,
        seq: ack.seq ?? -1,
        id: ack.id ?? '',
        clientId: pending.clientId,
        sender: this.index,
        sentAt: pending.sentAt,
        ackedAt: this.context.now(),
        attempts: pending.attempts,
        duplicateAck: ack.duplicate === true,
      });
      return;
    }
  }

  #receipt(membership: Membership, message: ChatFrame): Receipt {
    let receipt = membership.received.get(message.seq);
    if (!receipt) {
      receipt = { id: message.id, live: 0, history: 0 };
      membership.received.set(message.seq, receipt);
    } else if (receipt.id !== message.id) {
      this.context.counters.seqConflicts++;
    }
    return receipt;
  }

  #onFrame(frame: ServerFrame, pushed: boolean, generation: number): void {
    const counters = this.context.counters;
    if (!pushed && 'ref' in frame && typeof frame.ref === 'string') {
      const pending = this.#requests.get(frame.ref);
      if (!pending) {
        if (this.#timedOut.delete(frame.ref)) counters.lateAnswers++;
        else counters.orphanAnswers++;
        return;
      }
      // A resend under the same id (a send) may get the first attempt's late answer: the same ack.
      if (this.#timedOut.delete(frame.ref)) counters.lateAnswers++;
      this.#requests.delete(frame.ref);
      clearTimeout(pending.timer);
      const span = this.spans[generation];
      if (span && pending.sentAt > span.lastAnsweredSentAt) span.lastAnsweredSentAt = pending.sentAt;
      if (frame.type === 'error') {
        const key = `${frame.action ?? '?'}:${frame.code}`;
        counters.errorFrames[key] = (counters.errorFrames[key] ?? 0) + 1;
      }
      pending.resolve(frame);
      return;
    }
    switch (frame.type) {
      case 'chat': {
        const membership = this.rooms.get(frame.room) ?? this.#lastByRoom.get(frame.room);
        if (!membership) {
          counters.strayChats++;
          return;
        }
        if (this.rooms.get(frame.room) !== membership) this.chatsAfterLeave++;
        this.#receipt(membership, frame).live++;
        return;
      }
      case 'presence':
        counters.presenceFrames++;
        return;
      case 'notification': {
        const receipt = this.notifications.get(frame.id);
        if (receipt) receipt.live++;
        else this.notifications.set(frame.id, { live: 1, generation });
        return;
      }
      case 'error':
        counters.pushedErrors++;
        return;
      default:
        counters.unknownFrames++;
    }
  }
}

/** The highest seq up to which the membership holds every message without a gap (its resume point). */
export function contiguousSeq(membership: Membership): number {
  let seq = membership.startSeq ?? 0;
  while (membership.received.has(seq + 1) || membership.own.has(seq + 1)) seq++;
  return seq;
}

function unexpected(action: string, answer: ServerFrame): Error {
  return answer.type === 'error'
    ? new ErrorFrameError(answer.code, action)
    : new ErrorFrameError(`unexpected ${answer.type}`, action);
}
