/**
 * The console acting as a user: a real WebSocket connection per user (and groups), opened through the emulated
 * API Gateway with a token from the dev issuer, so a chat sent from the console runs the real authorizer,
 * `$connect`, `join` and `send` routes and fan-out, exactly as a client's. Connections are kept and reused:
 * one per user keeps the room's presence quiet (a connection per message would announce `joined` and `left`
 * each time). They carry the `User-Agent` {@link CONSOLE_USER_AGENT}, so the console can tell them apart.
 */
import { randomUUID } from 'node:crypto';
import type { AckFrame, JsonObject, ServerFrame } from '@viba-realtime/protocol';
import WebSocket from 'ws';
import type { DevIssuer } from '../identity/dev-issuer.js';
import type { Clock } from '../time.js';
import { ActAsRefusedError, AdminTimeoutError, statusOfCode } from './errors.js';
import { CONSOLE_USER_AGENT } from './types.js';

/** Options of {@link ActAsClients}. */
export interface ActAsOptions {
  /** The gateway's `ws://host:port/{stage}`. */
  url: string;
  issuer: DevIssuer;
  /** Which token the authorizer accepts (`VIBA_TOKEN_USE`'s first). */
  tokenUse: 'id' | 'access';
  clock: Clock;
  /** How long to wait for the gateway's answer to one request. @default 10_000 */
  timeoutMs?: number;
}

/** A chat to send as a user. */
export interface ChatAsUser {
  user: string;
  groups?: readonly string[];
  room: string;
  body: JsonObject;
}

/** Lifetime of the console's tokens: an hour, as Cognito's default. */
const TOKEN_TTL_SECONDS = 3600;
/** A token this close to its expiry is replaced before a request rather than have the request refused. */
const TOKEN_MARGIN_SECONDS = 60;

interface Pending {
  resolve: (frame: ServerFrame) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** One of the console's connections, as one user. */
class UserConnection {
  readonly joined = new Set<string>();
  readonly pending = new Map<string, Pending>();
  open = true;
  #counter = 0;

  constructor(
    readonly ws: WebSocket,
    readonly tokenExp: number,
    readonly timeoutMs: number,
  ) {
    ws.on('message', (data) => this.#onFrame(String(data)));
    // A socket error is followed by 'close', which rejects what waits; unhandled, it would end the process.
    ws.on('error', () => {});
    ws.on('close', () => {
      this.open = false;
      for (const [id, pending] of this.pending) {
        clearTimeout(pending.timer);
        pending.reject(
          new ActAsRefusedError(502, 'connection_closed', `The connection closed before answering ${id}.`),
        );
      }
      this.pending.clear();
    });
  }

  #onFrame(text: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    const ref = typeof frame.ref === 'string' ? frame.ref : undefined;
    if (ref !== undefined && (frame.type === 'ack' || frame.type === 'error')) {
      this.#settle(ref, frame as unknown as ServerFrame);
      return;
    }
    // API Gateway's answer to a failed integration names no request; with one request waiting it is that one's.
    if (frame.message === 'Internal server error' && this.pending.size === 1) {
      const [id] = this.pending.keys();
      if (id !== undefined) this.#settle(id, { type: 'error', code: 'internal', message: 'Internal server error' });
    }
  }

  #settle(id: string, frame: ServerFrame): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(frame);
  }

  /** Sends a frame and resolves with its ack. @throws {ActAsRefusedError} the answer was an error frame */
  request(frame: Record<string, unknown>): Promise<AckFrame> {
    this.#counter += 1;
    const id = `console-${this.#counter}-${randomUUID().slice(0, 8)}`;
    return new Promise<ServerFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AdminTimeoutError(`No answer to "${String(frame.action)}" within ${this.timeoutMs} ms.`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, id }));
    }).then((answer) => {
      if (answer.type === 'ack') return answer;
      const error = answer.type === 'error' ? answer : undefined;
      const code = error?.code ?? 'internal';
      throw new ActAsRefusedError(
        statusOfCode(code),
        code,
        error?.message ?? 'Unexpected answer.',
        answer as unknown as Record<string, unknown>,
      );
    });
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }
}

/**
 * The console's connections, one per user and set of groups.
 * @example
 * const clients = new ActAsClients({ url: emulator.url, issuer: emulator.issuer, tokenUse: 'id', clock });
 * const ack = await clients.send({ user: 'alice', room: 'lobby', body: { text: 'hi' } });
 */
export class ActAsClients {
  readonly #options: Required<ActAsOptions>;
  readonly #connections = new Map<string, Promise<UserConnection>>();
  #closed = false;

  constructor(options: ActAsOptions) {
    this.#options = { timeoutMs: 10_000, ...options };
  }

  /**
   * Sends a chat to `room` as `user`, joining it first if this connection has not.
   * @throws {ActAsRefusedError} the gateway refused the connection, or a handler answered an error frame
   * @throws {AdminTimeoutError} no answer in time
   */
  async send(chat: ChatAsUser): Promise<AckFrame> {
    const connection = await this.#connectionFor(chat.user, chat.groups ?? []);
    try {
      return await this.#sendOn(connection, chat);
    } catch (error) {
      // Membership revoked, or the token expired (which closes the connection): one fresh attempt.
      if (!(error instanceof ActAsRefusedError) || !['not_joined', 'token_expired'].includes(error.code)) throw error;
      connection.joined.delete(chat.room);
      if (error.code === 'token_expired') this.#drop(chat.user, chat.groups ?? [], connection);
      return this.#sendOn(await this.#connectionFor(chat.user, chat.groups ?? []), chat);
    }
  }

  async #sendOn(connection: UserConnection, chat: ChatAsUser): Promise<AckFrame> {
    if (!connection.joined.has(chat.room)) {
      await connection.request({ action: 'join', room: chat.room });
      connection.joined.add(chat.room);
    }
    return connection.request({ action: 'send', room: chat.room, body: chat.body });
  }

  /** Closes every connection (each runs `$disconnect`). */
  close(): void {
    this.#closed = true;
    for (const connection of this.#connections.values()) void connection.then((c) => c.close()).catch(() => {});
    this.#connections.clear();
  }

  #key(user: string, groups: readonly string[]): string {
    return `${user}|${[...groups].sort().join(',')}`;
  }

  #drop(user: string, groups: readonly string[], connection: UserConnection): void {
    connection.close();
    const key = this.#key(user, groups);
    void this.#connections.get(key)?.then((current) => {
      if (current === connection && this.#connections.get(key)) this.#connections.delete(key);
    });
  }

  async #connectionFor(user: string, groups: readonly string[]): Promise<UserConnection> {
    if (this.#closed) throw new ActAsRefusedError(503, 'closed', 'The emulator is closing.');
    const key = this.#key(user, groups);
    const existing = this.#connections.get(key);
    if (existing) {
      const connection = await existing.catch(() => undefined);
      const now = Math.floor(this.#options.clock() / 1000);
      if (connection?.open && connection.tokenExp - TOKEN_MARGIN_SECONDS > now) return connection;
      connection?.close();
      if (this.#connections.get(key) === existing) this.#connections.delete(key);
    }
    const opening = this.#open(user, groups);
    this.#connections.set(key, opening);
    opening.catch(() => {
      if (this.#connections.get(key) === opening) this.#connections.delete(key);
    });
    return opening;
  }

  #open(user: string, groups: readonly string[]): Promise<UserConnection> {
    const { issuer, tokenUse, url, clock, timeoutMs } = this.#options;
    const pair = issuer.mintPair({ sub: user, groups, ttlSeconds: TOKEN_TTL_SECONDS });
    const token = tokenUse === 'access' ? pair.accessToken : pair.idToken;
    const tokenExp = Math.floor(clock() / 1000) + TOKEN_TTL_SECONDS;
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, {
      headers: { 'user-agent': CONSOLE_USER_AGENT },
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new UserConnection(ws, tokenExp, timeoutMs)));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        ws.terminate();
        reject(
          new ActAsRefusedError(
            502,
            'connect_refused',
            `The gateway refused the connection as ${user}: HTTP ${res.statusCode}.`,
            {
              status: res.statusCode,
            },
          ),
        );
      });
      ws.once('error', (error) =>
        reject(new ActAsRefusedError(502, 'connect_failed', `Could not connect as ${user}: ${error.message}`)),
      );
    });
  }
}
