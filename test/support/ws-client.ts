/**
 * A raw `ws` client for integration tests: no SDK in between, so the tests exercise the wire protocol
 * exactly as any client would. Frames are buffered, so a test can await a frame that already arrived.
 */
import type { ClientFrame, ServerFrame } from '@viba-realtime/protocol';
import WebSocket from 'ws';

/** A client frame whose `id` may be left out (one is generated). */
export type FrameWithOptionalId = ClientFrame extends infer F
  ? F extends unknown
    ? Omit<F, 'id'> & { id?: string }
    : never
  : never;

type Waiter = { predicate: (frame: ServerFrame) => boolean; resolve: (frame: ServerFrame) => void };

export class TestClient {
  /** Every frame received, in order. */
  readonly received: ServerFrame[] = [];
  /** Resolves with the close code and reason once the socket is closed (by either side). */
  readonly closed: Promise<{ code: number; reason: string }>;
  #unread: ServerFrame[] = [];
  #waiters: Waiter[] = [];
  #counter = 0;

  private constructor(
    readonly socket: WebSocket,
    readonly name: string,
  ) {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as ServerFrame;
      this.received.push(frame);
      const waiter = this.#waiters.find((w) => w.predicate(frame));
      if (waiter) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      } else {
        this.#unread.push(frame);
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  /** Opens a connection; rejects if the upgrade is refused. */
  static connect(url: string, token?: string, options: { header?: boolean; name?: string } = {}): Promise<TestClient> {
    const target = token && !options.header ? `${url}?token=${encodeURIComponent(token)}` : url;
    const socket = new WebSocket(target, {
      ...(token && options.header ? { headers: { Authorization: `Bearer ${token}` } } : {}),
    });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new TestClient(socket, options.name ?? 'client')));
      socket.once('unexpected-response', (_req, res) => reject(new Error(`refused with HTTP ${res.statusCode}`)));
      socket.once('error', reject);
    });
  }

  /** The HTTP status with which the gateway refuses an upgrade (fails the test if the upgrade succeeds). */
  static refusal(url: string): Promise<number> {
    const socket = new WebSocket(url);
    return new Promise((resolve, reject) => {
      socket.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        socket.terminate();
      });
      socket.once('open', () => {
        socket.close();
        reject(new Error('the upgrade was accepted'));
      });
      socket.once('error', () => {});
    });
  }

  /** Resolves with the first unread frame matching `predicate`, now or when it arrives. */
  next(predicate: (frame: ServerFrame) => boolean = () => true): Promise<ServerFrame> {
    const index = this.#unread.findIndex(predicate);
    if (index >= 0) return Promise.resolve(this.#unread.splice(index, 1)[0] as ServerFrame);
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }

  /** Next `chat` frame of a room. */
  nextChat(room: string): Promise<Extract<ServerFrame, { type: 'chat' }>> {
    return this.next((f) => f.type === 'chat' && f.room === room) as Promise<Extract<ServerFrame, { type: 'chat' }>>;
  }

  sendRaw(text: string | Buffer): void {
    this.socket.send(text);
  }

  /** Sends a frame with an id (generated if absent) and resolves with the answer that references it. */
  request(frame: FrameWithOptionalId): Promise<ServerFrame> {
    const id = frame.id ?? `${this.name}-${++this.#counter}`;
    const answer = this.next((f) => 'ref' in f && f.ref === id && f.type !== 'chat');
    this.socket.send(JSON.stringify({ ...frame, id }));
    return answer;
  }

  /** Closes the connection and waits until it is closed. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    await this.closed;
  }
}
