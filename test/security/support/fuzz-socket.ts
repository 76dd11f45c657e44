/**
 * Raw clients for the bad-input suite, which must see exactly what the servers answer: a WebSocket client that
 * keeps every frame as text (the shared `TestClient` JSON-parses frames, so a non-JSON answer would throw in its
 * listener instead of failing the property), and a raw MQTT-over-TCP client that can write any bytes after a
 * real CONNECT. Every wait has a timeout: a hung connection is a failure, never a hung test.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import WebSocket from 'ws';

/** What a socket said next: a text frame, or its close. */
export type Said = { kind: 'frame'; text: string } | { kind: 'closed'; code: number; reason: string };

/** Server frame types that arrive unasked (room traffic, pushes), as opposed to answers to a request. */
const PUSHED = new Set(['chat', 'presence', 'notification', 'announcement']);

/** Rejects after `ms` with `what` in the message; the timer never keeps the process alive. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A WebSocket client that records frames as text and reports its close as a value. */
export class FuzzSocket {
  readonly frames: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeInfo: { code: number; reason: string } | undefined;
  #unread: string[] = [];
  #waiters: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      const text = isBinary ? `<binary ${(data as Buffer).length} bytes>` : data.toString();
      this.frames.push(text);
      this.#unread.push(text);
      this.#wake();
    });
    // A close is a value here; errors (e.g. writing after the server closed) are not the client's to throw.
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.#wake();
      });
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  static connect(url: string, token: string): Promise<FuzzSocket> {
    const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
    return within(
      new Promise((resolve, reject) => {
        socket.once('open', () => resolve(new FuzzSocket(socket)));
        socket.once('unexpected-response', (_req, res) => reject(new Error(`refused with HTTP ${res.statusCode}`)));
        socket.once('error', reject);
      }),
      5_000,
      'WebSocket connect',
    );
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends text or bytes as one frame (`binary` picks the opcode; `fin: false` starts or continues a fragmented
   * message). Bytes sent as text are not checked by the client: that is how invalid UTF-8 gets on the wire. */
  send(data: string | Buffer, options: { binary?: boolean; fin?: boolean } = {}): void {
    this.socket.send(data, { binary: options.binary ?? false, fin: options.fin ?? true, compress: false });
  }

  /** The next frame the server sends that is not pushed room traffic (an answer), or the close. */
  async nextAnswer(ms = 5_000, what = 'answer'): Promise<Said> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.#unread.length > 0) {
        const text = this.#unread.shift() as string;
        if (!isPushed(text)) return { kind: 'frame', text };
      }
      if (this.closeInfo) return { kind: 'closed', ...this.closeInfo };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer within ${ms} ms: ${what}`);
      await within(new Promise<void>((resolve) => this.#waiters.push(resolve)), left, what);
    }
  }

  /** Sends `text` and resolves with the answer (or the close). */
  async exchange(text: string | Buffer, options: { binary?: boolean } = {}, ms = 5_000): Promise<Said> {
    this.send(text, options);
    return this.nextAnswer(ms, typeof text === 'string' ? text.slice(0, 120) : `${text.length} bytes`);
  }

  /** Closes and waits for the close (or cuts the socket after 2 s). */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    await within(this.closed, 2_000, 'close').catch(() => this.socket.terminate());
  }
}

function isPushed(text: string): boolean {
  try {
    const frame = JSON.parse(text) as { type?: unknown };
    return typeof frame.type === 'string' && PUSHED.has(frame.type);
  } catch {
    return false;
  }
}

/**
 * MQTT 3.1.1 over raw TCP: a real CONNECT (so the custom authorizer runs), then any bytes. `pingable()` tells
 * whether the connection still works (PINGREQ answered by PINGRESP) or was closed; anything else is a hang.
 */
export class RawMqtt {
  #received: Buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      this.#wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Opens the TCP connection only: nothing sent yet. */
  static async socket(host: string, port: number): Promise<RawMqtt> {
    const socket = netConnect({ host, port });
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      }),
      5_000,
      'MQTT TCP connect',
    );
    return new RawMqtt(socket);
  }

  /** Connects and sends CONNECT; resolves once CONNACK accepted it (rejects on a refusal). */
  static async connect(host: string, port: number, options: { clientId: string; password: string }): Promise<RawMqtt> {
    const client = await RawMqtt.socket(host, port);
    const socket = client.socket;
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        keepalive: 60,
        clientId: options.clientId,
        username: 'any',
        password: Buffer.from(options.password),
      }),
    );
    // CONNACK: 0x20 0x02 flags returnCode.
    const connack = await client.#take(4, 'CONNACK');
    if (connack[0] !== 0x20 || connack[3] !== 0) {
      socket.destroy();
      throw new Error(`CONNECT refused: ${connack.toString('hex')}`);
    }
    return client;
  }

  async #take(bytes: number, what: string): Promise<Buffer> {
    const deadline = Date.now() + 5_000;
    while (this.#received.length < bytes) {
      if (this.#closed) throw new Error(`closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within 5000 ms`);
      await within(new Promise<void>((resolve) => this.#waiters.push(resolve)), left, what);
    }
    const out = this.#received.subarray(0, bytes);
    this.#received = this.#received.subarray(bytes);
    return out;
  }

  write(bytes: Buffer): void {
    if (!this.#closed) this.socket.write(bytes);
  }

  /** Whether the broker still serves this connection: `pong` (PINGRESP arrived), `closed`, or a rejection (hang). */
  async pingable(ms = 5_000): Promise<'pong' | 'closed'> {
    if (this.#closed) return 'closed';
    // Whatever the broker said to the garbage before is dropped: only the PINGRESP (0xd0 0x00) matters.
    this.#received = Buffer.alloc(0);
    this.socket.write(Buffer.from([0xc0, 0x00]));
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.#received.includes(Buffer.from([0xd0, 0x00]))) return 'pong';
      if (this.#closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`neither PINGRESP nor close within ${ms} ms`);
      await within(new Promise<void>((resolve) => this.#waiters.push(resolve)), left, 'PINGRESP');
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
