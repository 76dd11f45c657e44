/**
 * Requests and their answers. Every request carries a client id (`id`, echoed as `ref`), so an answer finds
 * its request whatever order answers come in, and a request re-sent after a reconnect is the same request
 * to the service (a `send` is stored once). While disconnected, requests wait in a bounded queue.
 */
import {
  assertBody,
  assertClientId,
  assertGroupName,
  assertRoomName,
  type ClientFrame,
  type ErrorFrame,
  type ServerFrame,
  ValidationError,
} from '@viba-realtime/protocol';
import {
  ClientClosedError,
  ConnectionError,
  OfflineQueueFullError,
  RequestError,
  RequestTimeoutError,
} from '../errors.js';
import { randomId } from './ids.js';

/** How one request behaves around disconnects. */
export interface RequestOptions {
  /** Held (not written) until this says yes, e.g. a `send` until its room is joined again. */
  gate?: () => boolean;
  /** Re-sent after a reconnect if the connection dropped before the answer (default true). `false`: fails
   * with `ConnectionError` instead (a `join`, which its room re-sends itself). */
  resend?: boolean;
  /** May wait in the offline queue (default true). `false`: fails at once while disconnected (`ping`). */
  queue?: boolean;
  /** Decides what an error answer means; `retry` keeps the request pending and writes it again after
   * `delayMs` (`conflict`), `hold` keeps it pending unsent until the next flush (`not_joined`). */
  onError?: (error: ErrorFrame) => { retry: number } | 'hold' | 'fail';
}

interface Pending {
  frame: ClientFrame & { id: string };
  options: RequestOptions;
  inFlight: boolean;
  resolve: (frame: ServerFrame) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export interface RequestQueueOptions {
  timeoutMs: number;
  maxQueued: number;
  /** Writes a frame; throws when the connection is not open. */
  write: (frame: ClientFrame) => void;
  isOpen: () => boolean;
  /** The client is closed: new requests fail at once instead of waiting for a connect that may never come. */
  isClosed: () => boolean;
}

/** Frames that answer a request. Others may carry a `ref` too (a `chat` frame names its sender's client id,
 * which another user may well have used as well) and must never be taken for an answer. */
const ANSWER_TYPES: ReadonlySet<ServerFrame['type']> = new Set([
  'ack',
  'error',
  'history',
  'pong',
  'inbox',
  'announcements',
]);

/** Converts the protocol's validation error to the SDK's, with the same code. */
export function toRequestError(error: unknown): Error {
  if (error instanceof ValidationError) {
    return new RequestError(error.code, error.message, error.details ? { details: error.details } : undefined);
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The checks whose failure the app must hear about before anything is sent (names, ids, body size), with the
 * service's own codes. The SDK builds every frame from typed arguments, so the service's full frame validator
 * (a fifth of the bundle) would re-check what the types already guarantee; the service still checks it all.
 */
function checkFrame(frame: ClientFrame & { id: string }): void {
  assertClientId(frame.id);
  if ('room' in frame) assertRoomName(frame.room);
  if ('group' in frame && frame.group !== undefined) assertGroupName(frame.group);
  if ((frame.action === 'send' || frame.action === 'announce') && frame.body !== undefined) assertBody(frame.body);
}

export class RequestQueue {
  // Insertion order is the send order: requests queued offline go out in the order they were made.
  readonly #pending = new Map<string, Pending>();
  readonly #options: RequestQueueOptions;

  constructor(options: RequestQueueOptions) {
    this.#options = options;
  }

  /** Requests waiting to be written (the offline queue). */
  get queued(): number {
    let count = 0;
    for (const pending of this.#pending.values()) if (!pending.inFlight) count++;
    return count;
  }

  /** Sends a request; resolves with its answer frame, rejects with a `RequestError` for an `error` answer. */
  request(frame: ClientFrame, options: RequestOptions = {}): Promise<ServerFrame> {
    const withId = { ...frame, id: frame.id ?? randomId() } as ClientFrame & { id: string };
    try {
      checkFrame(withId);
    } catch (error) {
      return Promise.reject(toRequestError(error));
    }
    if (this.#pending.has(withId.id)) {
      return Promise.reject(
        new RequestError('invalid_id', `A request with id "${withId.id}" is already pending.`, {
          details: { id: withId.id },
        }),
      );
    }
    if (this.#options.isClosed()) return Promise.reject(new ClientClosedError());
    const open = this.#options.isOpen();
    if (!open && options.queue === false) {
      return Promise.reject(new ConnectionError(`Not connected: "${withId.action}" needs a connection.`));
    }
    if (this.queued >= this.#options.maxQueued && (!open || options.gate?.() === false)) {
      return Promise.reject(new OfflineQueueFullError(this.#options.maxQueued));
    }
    return new Promise<ServerFrame>((resolve, reject) => {
      const pending: Pending = { frame: withId, options, inFlight: false, resolve, reject, timer: undefined };
      this.#pending.set(withId.id, pending);
      if (open) this.#write(pending);
    });
  }

  /** Writes every queued request whose gate is open (after a connect, or when a room is joined). */
  flush(): void {
    if (!this.#options.isOpen()) return;
    for (const pending of [...this.#pending.values()]) {
      if (!pending.inFlight) this.#write(pending);
    }
  }

  /** Routes an answer frame to its request. Returns false when no request has that `ref`. */
  answer(frame: ServerFrame): boolean {
    if (!ANSWER_TYPES.has(frame.type)) return false;
    const ref = 'ref' in frame ? frame.ref : undefined;
    if (ref === undefined) return false;
    const pending = this.#pending.get(ref);
    if (pending === undefined) return false;
    this.#clearTimer(pending);
    if (frame.type === 'error') {
      // The service closes the connection after `token_expired`; the client reconnects with a fresh token and
      // the request goes out again, unless it is one its owner re-sends itself.
      const decision =
        frame.code === 'token_expired' && pending.options.resend !== false
          ? 'hold'
          : (pending.options.onError?.(frame) ?? 'fail');
      if (decision === 'hold') {
        pending.inFlight = false;
        return true;
      }
      if (decision !== 'fail') {
        pending.inFlight = false;
        pending.timer = setTimeout(() => {
          pending.timer = undefined;
          if (this.#pending.get(ref) === pending && this.#options.isOpen()) this.#write(pending);
        }, decision.retry);
        return true;
      }
      this.#pending.delete(ref);
      pending.reject(RequestError.fromFrame(frame));
      return true;
    }
    this.#pending.delete(ref);
    pending.resolve(frame);
    return true;
  }

  /** The connection dropped: requests in flight go back to the queue (same id), or fail if they may not. */
  disconnected(): void {
    for (const [id, pending] of [...this.#pending]) {
      this.#clearTimer(pending);
      if (!pending.inFlight) continue;
      if (pending.options.resend === false || pending.options.queue === false) {
        this.#pending.delete(id);
        pending.reject(new ConnectionError(`The connection dropped before "${pending.frame.action}" was answered.`));
      } else {
        pending.inFlight = false;
      }
    }
  }

  /** Fails every pending request matching `filter` (all by default). */
  failAll(error: Error, filter: (frame: ClientFrame) => boolean = () => true): void {
    for (const [id, pending] of [...this.#pending]) {
      if (!filter(pending.frame)) continue;
      this.#clearTimer(pending);
      this.#pending.delete(id);
      pending.reject(error);
    }
  }

  /** The client closed: everything pending fails. */
  close(cause?: Error): void {
    this.failAll(new ClientClosedError(undefined, cause === undefined ? undefined : { cause }));
  }

  #write(pending: Pending): void {
    if (pending.options.gate?.() === false) return;
    try {
      this.#options.write(pending.frame);
    } catch (error) {
      // The socket is closing. A request that may wait is written again on the next connection; one that may
      // not (a ping, a leave) fails now rather than go out later on a connection it was not meant for.
      if (pending.options.queue === false || pending.options.resend === false) {
        this.#pending.delete(pending.frame.id);
        pending.reject(new ConnectionError(`Not connected: "${pending.frame.action}" was not sent.`, { cause: error }));
      }
      return;
    }
    pending.inFlight = true;
    const { id, action } = pending.frame;
    pending.timer = setTimeout(() => {
      if (this.#pending.get(id) !== pending) return;
      this.#pending.delete(id);
      pending.reject(new RequestTimeoutError(action, this.#options.timeoutMs));
    }, this.#options.timeoutMs);
  }

  #clearTimer(pending: Pending): void {
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    pending.timer = undefined;
  }
}
