/**
 * A room handle: joins (and rejoins after every reconnect), delivers messages in `seq` order exactly once,
 * and fills what it missed — while offline or in a gap between live frames — from history.
 */
import type {
  AckFrame,
  ChatFrame,
  ErrorFrame,
  HistoryPageFrame,
  JsonObject,
  PresenceFrame,
  RoomVisibility,
} from '@viba-realtime/protocol';
import { LIMITS } from '@viba-realtime/protocol';
import { ClientClosedError, ConnectionError, type RealtimeClientError, RequestError, RoomLeftError } from './errors.js';
import type { ClientContext } from './internal/context.js';
import { Emitter } from './internal/emitter.js';
import { randomId } from './internal/ids.js';
import { RecentSet } from './internal/recent.js';
import type { ChatMessage, HistoryPage, Room, RoomEvents, RoomStatus, SendResult } from './types.js';

/** Join answers that no retry can change. */
const PERMANENT_JOIN_CODES = new Set([
  'forbidden',
  'room_closed',
  'invalid_room',
  'too_many_rooms',
  'bad_request',
  'body_too_large',
]);

/** How long a gap in live `seq`s may stay open before history fills it: frames of concurrent sends often
 * arrive a few ms out of order, and waiting a little saves a history request for each. */
const GAP_WAIT_MS = 200;

/** Duplicate ids remembered per room. */
const SEEN_CAPACITY = 1_000;

/** Retries of a `send` answered `conflict` (the same id still being stored by an earlier attempt). */
const CONFLICT_RETRY_MS = 250;

export interface RoomHost {
  /** The handle left: forget it; `leaving` settles when the service answered the leave. */
  removeRoom(name: string, leaving: Promise<void>): void;
  /** A leave of this room by an earlier handle still in flight: a join must wait for it, or the service may
   * run the two in either order (API Gateway runs a connection's frames concurrently) and unsubscribe us. */
  pendingLeave(name: string): Promise<void> | undefined;
}

/** Whether an error means "the connection is (being) replaced": the next connect rejoins and catches up. */
function isConnectionLoss(error: unknown): boolean {
  return (
    error instanceof ConnectionError ||
    error instanceof ClientClosedError ||
    (error instanceof RequestError && error.code === 'token_expired')
  );
}

function toMessage<Body extends JsonObject>(frame: ChatFrame, body: Body): ChatMessage<Body> {
  return { id: frame.id, room: frame.room, from: frame.from, seq: frame.seq, ts: frame.ts, body, clientId: frame.ref };
}

export class RoomHandle<Body extends JsonObject = JsonObject> implements Room<Body> {
  readonly name: string;
  #status: RoomStatus = 'joining';
  #error: RealtimeClientError | undefined;
  #lastSeq = 0;
  #visibility: RoomVisibility | undefined;
  readonly #requestedVisibility: RoomVisibility | undefined;
  readonly #ctx: ClientContext;
  readonly #host: RoomHost;
  readonly #events: Emitter<RoomEvents<Body>>;
  readonly #seen = new RecentSet(SEEN_CAPACITY);
  /** Live frames held back until the ones before them are delivered (by seq). */
  readonly #buffer = new Map<number, ChatFrame>();
  #everJoined = false;
  #joinInFlight = false;
  #joinAttempt = 0;
  #catchingUp = false;
  #catchUpAgain = false;
  #catchUpAttempt = 0;
  #gapTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #ready: Promise<void>;
  #settleReady: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(name: string, ctx: ClientContext, host: RoomHost, visibility?: RoomVisibility) {
    this.name = name;
    this.#ctx = ctx;
    this.#host = host;
    this.#requestedVisibility = visibility;
    this.#events = new Emitter((event, error) => ctx.listenerFailed(`room:${event}`, error));
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#settleReady = { resolve, reject };
    });
    // Nobody may be awaiting ready(); a refusal must not become an unhandled rejection.
    this.#ready.catch(() => undefined);
    if (ctx.isOpen) this.#join();
  }

  get status(): RoomStatus {
    return this.#status;
  }
  get error(): RealtimeClientError | undefined {
    return this.#error;
  }
  get lastSeq(): number {
    return this.#lastSeq;
  }
  get visibility(): RoomVisibility | undefined {
    return this.#visibility;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  on<E extends keyof RoomEvents<Body>>(event: E, listener: RoomEvents<Body>[E]): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof RoomEvents<Body>>(event: E, listener: RoomEvents<Body>[E]): void {
    this.#events.off(event, listener);
  }

  async send(body: Body, options?: { clientId?: string }): Promise<SendResult> {
    if (this.#status === 'left') throw new RoomLeftError(this.name);
    if (this.#status === 'failed' && this.#error) throw this.#error;
    this.#ctx.checkOutgoing('message', body);
    const clientId = options?.clientId ?? randomId(16);
    const answer = (await this.#ctx.request(
      { action: 'send', room: this.name, id: clientId, body },
      {
        // Held while (re)joining: a send before the join's ack would be answered `not_joined`.
        gate: () => this.#status === 'joined',
        onError: (error) => this.#onSendError(error),
      },
    )) as AckFrame;
    if (answer.id !== undefined && answer.seq !== undefined && this.#ctx.userId !== undefined) {
      // The service sends a message to every connection but the sender's, which gets the ack instead. Fed in
      // here, the sender's own messages reach `message` listeners like everyone's, in seq order and once
      // (history after a reconnect would otherwise bring them back only sometimes).
      this.chat({
        type: 'chat',
        id: answer.id,
        room: this.name,
        from: this.#ctx.userId,
        seq: answer.seq,
        ts: answer.ts,
        body,
        ref: clientId,
      });
    }
    return {
      id: answer.id ?? '',
      seq: answer.seq ?? 0,
      ts: answer.ts,
      clientId,
      duplicate: answer.duplicate === true,
    };
  }

  async history(options: { before?: number; after?: number; limit?: number } = {}): Promise<HistoryPage<Body>> {
    const page = (await this.#ctx.request({
      action: 'history',
      room: this.name,
      body: options,
    })) as HistoryPageFrame;
    const messages: ChatMessage<Body>[] = [];
    for (const frame of page.messages) {
      const body = this.#ctx.checkIncoming('message', frame.body, frame);
      if (body !== undefined) messages.push(toMessage(frame, body as Body));
    }
    return page.next === undefined ? { messages } : { messages, next: page.next };
  }

  async leave(): Promise<void> {
    if (this.#status === 'left') return;
    const wasJoined = this.#status === 'joined' || this.#joinInFlight;
    this.#setStatus('left');
    this.#clearTimers();
    this.#buffer.clear();
    const error = new RoomLeftError(this.name);
    this.#settleReady?.reject(error);
    this.#ctx.failRoomRequests(this.name, error);
    const leaving =
      wasJoined && this.#ctx.isOpen
        ? this.#ctx.request({ action: 'leave', room: this.name }, { resend: false, queue: false }).then(
            () => undefined,
            (cause: unknown) => {
              // Leaving needs no answer to take effect here; the service drops the subscription with the
              // connection at the latest. Worth a log line, not a rejection.
              this.#ctx.logger.debug?.(`leave ${this.name}: no answer`, { error: String(cause) });
            },
          )
        : Promise.resolve();
    this.#host.removeRoom(this.name, leaving);
    await leaving;
  }

  /** The backend closed the room (a pushed `room_closed` error frame). */
  closedByService(frame: ErrorFrame): void {
    if (this.#status === 'left' || this.#status === 'failed') return;
    this.#fail(RequestError.fromFrame(frame));
  }

  // --- called by the client ---

  /** A connection is open: join (again). */
  connected(): void {
    if (this.#status === 'left' || this.#status === 'failed') return;
    this.#join();
  }

  /** The connection dropped. */
  disconnected(): void {
    if (this.#status === 'left' || this.#status === 'failed') return;
    this.#joinInFlight = false;
    this.#catchingUp = false;
    this.#clearTimers();
    if (this.#status === 'joined') this.#setStatus('rejoining');
  }

  chat(frame: ChatFrame): void {
    if (this.#status === 'left' || this.#status === 'failed' || this.#seen.has(frame.id)) return;
    if (!this.#everJoined || this.#catchingUp || this.#status !== 'joined') {
      this.#buffer.set(frame.seq, frame);
      return;
    }
    if (frame.seq <= this.#lastSeq + 1) {
      this.#deliver(frame);
      this.#drainBuffer();
      return;
    }
    this.#buffer.set(frame.seq, frame);
    this.#gapTimer ??= setTimeout(() => {
      this.#gapTimer = undefined;
      if (this.#buffer.size > 0) void this.#catchUp();
    }, GAP_WAIT_MS);
  }

  presence(frame: PresenceFrame): void {
    if (this.#status !== 'joined' && this.#status !== 'rejoining') return;
    this.#events.emit('presence', { room: frame.room, user: frame.user, state: frame.state, ts: frame.ts });
  }

  // --- internals ---

  #join(): void {
    if (this.#joinInFlight) return;
    this.#joinInFlight = true;
    if (this.#status !== 'joining') this.#setStatus(this.#everJoined ? 'rejoining' : 'joining');
    const leaving = this.#host.pendingLeave(this.name);
    if (leaving !== undefined) {
      void leaving.then(() => {
        this.#joinInFlight = false;
        if (this.#ctx.isOpen && this.#status !== 'left' && this.#status !== 'failed') this.#join();
      });
      return;
    }
    const frame =
      this.#requestedVisibility === undefined
        ? ({ action: 'join', room: this.name } as const)
        : ({ action: 'join', room: this.name, body: { visibility: this.#requestedVisibility } } as const);
    this.#ctx.request(frame, { resend: false, queue: false }).then(
      (answer) => this.#joined(answer as AckFrame),
      (error: unknown) => this.#joinFailed(error),
    );
  }

  #joined(ack: AckFrame): void {
    this.#joinInFlight = false;
    if (this.#status === 'left' || this.#status === 'failed') return;
    this.#joinAttempt = 0;
    this.#visibility = ack.visibility ?? this.#visibility;
    const latest = ack.seq ?? 0;
    const first = !this.#everJoined;
    this.#everJoined = true;
    if (first) {
      // A new subscriber starts at the room's present; older messages are history's.
      this.#lastSeq = Math.max(this.#lastSeq, latest);
    }
    this.#setStatus('joined');
    this.#settleReady?.resolve();
    this.#ctx.flush();
    if (latest > this.#lastSeq || this.#buffer.size > 0) {
      if (first) this.#drainBuffer(true);
      else void this.#catchUp();
    }
  }

  #joinFailed(error: unknown): void {
    this.#joinInFlight = false;
    if (this.#status === 'left' || this.#status === 'failed') return;
    if (error instanceof RequestError && PERMANENT_JOIN_CODES.has(error.code)) {
      this.#fail(error);
      return;
    }
    if (isConnectionLoss(error)) return; // the next connect joins again (or the client is closed)
    // `internal`, `conflict`, a timeout: try again, backing off.
    const delay = this.#ctx.retryDelay(this.#joinAttempt++);
    this.#ctx.logger.warn?.(`join ${this.name} failed; retrying in ${delay} ms`, { error: String(error) });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#ctx.isOpen) this.#join();
    }, delay);
  }

  #fail(error: RealtimeClientError): void {
    this.#error = error;
    this.#clearTimers();
    this.#buffer.clear();
    this.#setStatus('failed', error);
    this.#settleReady?.reject(error);
    this.#events.emit('error', error);
    this.#ctx.failRoomRequests(this.name, error);
  }

  #onSendError(error: ErrorFrame): { retry: number } | 'hold' | 'fail' {
    if (error.code === 'conflict') return { retry: CONFLICT_RETRY_MS };
    if (error.code === 'token_expired') return 'hold';
    if (error.code === 'not_joined' && this.#status !== 'left' && this.#status !== 'failed') {
      // The service lost this connection's subscription (it was replaced, say): join again, then resend.
      if (this.#status === 'joined') this.#setStatus('rejoining');
      if (this.#ctx.isOpen) this.#join();
      return 'hold';
    }
    return 'fail';
  }

  /** Fetches history after the last delivered seq until it is current, then releases the held frames. */
  async #catchUp(): Promise<void> {
    if (this.#catchingUp) {
      this.#catchUpAgain = true;
      return;
    }
    if (this.#gapTimer !== undefined) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    }
    this.#catchingUp = true;
    try {
      do {
        this.#catchUpAgain = false;
        for (;;) {
          const page = (await this.#ctx.request(
            { action: 'history', room: this.name, body: { after: this.#lastSeq, limit: LIMITS.historyPageMax } },
            { resend: false },
          )) as HistoryPageFrame;
          if (!this.#catchingUp) return; // disconnected meanwhile; the next join catches up again
          for (const frame of page.messages) {
            this.#buffer.delete(frame.seq);
            if (frame.seq > this.#lastSeq && !this.#seen.has(frame.id)) this.#deliver(frame);
          }
          if (page.next === undefined || page.messages.length === 0) break;
        }
      } while (this.#catchUpAgain);
      this.#catchingUp = false;
      this.#catchUpAttempt = 0;
      // History is current as of the read: held frames past it are real (a failed send leaves a gap forever).
      this.#drainBuffer(true);
    } catch (error) {
      this.#catchingUp = false;
      if (this.#status === 'left' || this.#status === 'failed') return;
      if (isConnectionLoss(error)) return; // rejoin on reconnect catches up
      // Keep holding: releasing now would move lastSeq past messages history does have, for good.
      const delay = this.#ctx.retryDelay(this.#catchUpAttempt++);
      this.#ctx.logger.warn?.(`catch-up of ${this.name} failed; retrying in ${delay} ms`, { error: String(error) });
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        if (this.#ctx.isOpen && this.#status === 'joined') void this.#catchUp();
      }, delay);
    }
  }

  /** Delivers held frames in seq order: only the consecutive run after lastSeq, or all of them (`force`). */
  #drainBuffer(force = false): void {
    if (this.#buffer.size === 0) return;
    const seqs = [...this.#buffer.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      if (!force && seq > this.#lastSeq + 1) {
        this.#gapTimer ??= setTimeout(() => {
          this.#gapTimer = undefined;
          if (this.#buffer.size > 0) void this.#catchUp();
        }, GAP_WAIT_MS);
        return;
      }
      const frame = this.#buffer.get(seq) as ChatFrame;
      this.#buffer.delete(seq);
      if (!this.#seen.has(frame.id)) this.#deliver(frame);
    }
  }

  #deliver(frame: ChatFrame): void {
    this.#seen.add(frame.id);
    // A frame older than lastSeq (its send was stored after a later one) is still delivered: late beats lost.
    if (frame.seq > this.#lastSeq) this.#lastSeq = frame.seq;
    const body = this.#ctx.checkIncoming('message', frame.body, frame);
    if (body === undefined) return;
    this.#events.emit('message', toMessage(frame, body as Body));
  }

  #setStatus(status: RoomStatus, error?: RealtimeClientError): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#events.emit('status', status, error);
  }

  #clearTimers(): void {
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#gapTimer = undefined;
    this.#retryTimer = undefined;
  }
}
