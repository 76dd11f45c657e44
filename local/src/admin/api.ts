/**
 * The console's page and its admin API on the emulator's HTTP port (reference: docs/EMULATOR.md, "Console"):
 *
 * - `GET /` (and `/_admin/`): the console page; `/_admin/assets/*` its script and style;
 * - `GET /_admin/api/state`, `/connections`, `/rooms`, `/rooms/{room}`, `/events`, `/clock`, `/faults`: what is
 *   going on, read from the gateway, the broker and the store;
 * - `POST` actions, each through the same code a client or backend would use, never a side door: rooms, grants
 *   and revocations, notifications and announcements through the backend publisher; a chat as a user over a
 *   real WebSocket connection through the gateway (./act-as.ts); tokens from the dev issuer; disconnects as
 *   `DeleteConnection` does them;
 * - `WS /_admin/events`: the event stream (./events.ts).
 *
 * Every request passes ./guard.ts first: this machine only, the console's own origin only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoDbStore, type DynamoDbStore, type LogLevel as HandlerLogLevel } from '@viba-realtime/lambdas';
import { assertRoomName, isJsonObject, type JsonObject, TOKEN_SWEEPER_HANDLER } from '@viba-realtime/protocol';
import { createPublisher, type Publisher, type PublisherConfig } from '@viba-realtime/publisher';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Broker } from '../broker/broker.js';
import type { FaultInjector, FaultRuleInput } from '../faults/index.js';
import { parseRequestUrl, type WebSocketGateway } from '../gateway/websocket-gateway.js';
import type { DevIssuer } from '../identity/dev-issuer.js';
import { parseDevTokenQuery } from '../identity/dev-token-query.js';
import type { IotCore } from '../iot/iot-core.js';
import type { EmulatorLogger } from '../log.js';
import type { LocalScheduler } from '../scheduler/local-scheduler.js';
import { ActAsClients } from './act-as.js';
import { type ConsoleAssetName, type ConsoleAssets, createConsoleAssets } from './assets.js';
import type { AdjustableClock } from './clock.js';
import {
  AdminBadRequestError,
  AdminError,
  AdminForbiddenError,
  AdminNotFoundError,
  AdminUnavailableError,
  toAdminError,
} from './errors.js';
import type { AdminEventBus } from './events.js';
import { readFaults } from './faults.js';
import { type AdminAccessOptions, checkApiRequest, checkPeer } from './guard.js';
import { disconnectConnection, listConnections, listRooms, readRoom, type StateSources } from './state.js';
import {
  ADMIN_API_PREFIX,
  ADMIN_EVENTS_PATH,
  ADMIN_PREFIX,
  type AdminEvent,
  type ClockView,
  type EmulatorInfo,
  type StateView,
} from './types.js';

/** Options of {@link createAdminApi}: the emulator's parts the console reads and drives. */
export interface AdminApiOptions {
  gateway: WebSocketGateway;
  broker: Broker | undefined;
  iot: IotCore | undefined;
  issuer: DevIssuer;
  clock: AdjustableClock;
  bus: AdminEventBus;
  logger: EmulatorLogger;
  /** The backend publisher's settings for this emulator (what `/dev/config` serves). */
  publisherConfig: PublisherConfig;
  /** The publisher's log level (the handlers'). */
  publisherLogLevel: HandlerLogLevel;
  info: EmulatorInfo;
  /** The token use the authorizer accepts, for the console's own connections. */
  tokenUse: 'id' | 'access';
  /** Serve peers beyond this machine (`--console-remote`). */
  allowRemote: boolean;
  /** The emulator's fault registry, when it has one (`emulator.faults`), read on each request. */
  faults: () => FaultInjector | undefined;
  /** The scheduled functions, run when the clock is moved past their time. */
  scheduler?: LocalScheduler;
  /** Replaces the esbuild bundling of the page (tests). */
  assets?: ConsoleAssets;
}

/** The console's request handlers, plugged into the emulator's HTTP server. */
export interface AdminApi {
  /** Serves `/`, `/_admin/...`; `false` (touching nothing) for any other request. */
  handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Serves the `/_admin/events` upgrade; `false` (touching nothing) for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Closes the event streams, the console's user connections and its SDK clients. */
  close(): Promise<void>;
}

/** Largest request body the API reads. */
const MAX_BODY_BYTES = 64 * 1024;
/** Events sent to a new event stream before the live ones. */
const BACKLOG_EVENTS = 500;
/** New events are sent in batches this often, so a burst (a large fan-out) is one frame, not thousands. */
const STREAM_BATCH_MS = 100;
/** A stream whose socket has this much unsent is skipped (and told how many events it missed). */
const STREAM_MAX_BUFFERED = 4 * 1024 * 1024;

/** At most a week per move: a slip of units (seconds given as ms) must not jump years and expire everything. */
const MAX_ADVANCE_MS = 7 * 24 * 3600 * 1000;

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, contentType: string, body: string, headers = {}): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', JSON.stringify(value));
}

/** The page's policy: its own script, style and API only; never framed (clickjacking). */
function pagePolicy(host: string | undefined): string {
  // 'self' covers ws: of the same host in CSP 3; the explicit source is for browsers that predate it.
  const events = host ? ` ws://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${events}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new AdminError(413, 'too_large', `Bodies are limited to ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AdminBadRequestError('The body is not JSON.', { cause: error });
  }
  if (!isJsonObject(value)) throw new AdminBadRequestError('The body must be a JSON object.');
  return value;
}

function requireString(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value.trim() === '') throw new AdminBadRequestError(`"${name}" is required.`);
  return value.trim();
}

/** A list given as an array or a comma-separated string (form fields); empty entries dropped. */
function stringList(value: unknown, name: string): string[] {
  if (value === undefined || value === null) return [];
  const items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : undefined;
  if (items === undefined || !items.every((item) => typeof item === 'string'))
    throw new AdminBadRequestError(`"${name}" must be a list of strings or a comma-separated string.`);
  return [...new Set(items.map((item) => item.trim()).filter((item) => item !== ''))];
}

/** The message body: `body` as given, or `{ text }` (and `title`) from the form fields. */
function messageBody(body: Record<string, unknown>): JsonObject {
  if (body.body !== undefined) {
    if (!isJsonObject(body.body)) throw new AdminBadRequestError('"body" must be a JSON object.');
    return body.body;
  }
  const out: JsonObject = {};
  if (typeof body.title === 'string' && body.title.trim() !== '') out.title = body.title.trim();
  if (typeof body.text === 'string' && body.text.trim() !== '') out.text = body.text.trim();
  if (Object.keys(out).length === 0) throw new AdminBadRequestError('Give "text" (or a "body" object).');
  return out;
}

/** A user and groups, validated as `/dev/token` validates them. */
function identity(body: Record<string, unknown>, subField: string) {
  const params = new URLSearchParams({ sub: typeof body[subField] === 'string' ? String(body[subField]).trim() : '' });
  const groups = stringList(body.groups, 'groups');
  if (groups.length > 0) params.set('groups', groups.join(','));
  if (body.ttlSeconds !== undefined) params.set('ttl', String(body.ttlSeconds));
  if (typeof body.username === 'string' && body.username !== '') params.set('username', body.username);
  const parsed = parseDevTokenQuery(params);
  if (!parsed.ok) {
    const field = parsed.parameter === 'sub' ? subField : parsed.parameter === 'ttl' ? 'ttlSeconds' : parsed.parameter;
    throw new AdminBadRequestError(`${field}: ${parsed.message.replace(/^sub\b/, subField)}`);
  }
  return parsed.value;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AdminBadRequestError('The path is not valid percent-encoding.');
  }
}

type RouteHandler = (params: string[], req: IncomingMessage, url: URL) => Promise<unknown>;

/**
 * Creates the console's handlers.
 * @example
 * const admin = createAdminApi({ gateway, broker, iot, issuer, clock, bus, logger, publisherConfig, ... });
 * server.on('request', async (req, res) => { if (!(await admin.handleRequest(req, res))) notFound(res); });
 */
export function createAdminApi(options: AdminApiOptions): AdminApi {
  const { gateway, broker, iot, scheduler, issuer, clock, bus, logger, publisherConfig, info } = options;
  const access: AdminAccessOptions = { allowRemote: options.allowRemote };
  const assets = options.assets ?? createConsoleAssets();

  const credentials = publisherConfig.credentials;
  const store: DynamoDbStore = createDynamoDbStore({
    tableName: publisherConfig.tableName,
    region: publisherConfig.region ?? 'us-east-1',
    ...(publisherConfig.dynamodbEndpoint ? { endpoint: publisherConfig.dynamodbEndpoint } : {}),
    ...(credentials ? { credentials } : {}),
    clock,
  });
  const dynamodb = new DynamoDBClient({
    region: publisherConfig.region ?? 'us-east-1',
    ...(publisherConfig.dynamodbEndpoint ? { endpoint: publisherConfig.dynamodbEndpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
  const sources: StateSources = { gateway, broker, iot, store, dynamodb, tableName: publisherConfig.tableName };
  // Created on first use: most sessions only watch.
  let publisher: Publisher | undefined;
  const publish = () => {
    // On the console's clock, so that what it sends after a move treats tokens and records as the emulator does.
    publisher ??= createPublisher({ ...publisherConfig, logLevel: options.publisherLogLevel }, { clock });
    return publisher;
  };
  const actAs = new ActAsClients({ url: info.url, issuer, tokenUse: options.tokenUse, clock });
  const registry = options.faults;

  const say = (text: string) => logger.line('info', 'ADMIN', `console: ${text}`);
  const clockView = (): ClockView => ({ now: clock(), offsetMs: clock.offsetMs });

  const routes: [method: string, pattern: RegExp, handler: RouteHandler][] = [
    [
      'GET',
      /^\/state$/,
      async (): Promise<StateView> => {
        const [connections, rooms, faults] = await Promise.all([
          listConnections(sources),
          listRooms(sources),
          readFaults(registry()),
        ]);
        return { emulator: info, clock: clockView(), connections, rooms, faults };
      },
    ],
    ['GET', /^\/connections$/, async () => ({ connections: await listConnections(sources) })],
    [
      'POST',
      /^\/connections\/([^/]+)\/disconnect$/,
      async ([id = '']) => {
        const connectionId = decodeSegment(id);
        await disconnectConnection(sources, connectionId);
        say(`disconnected ${connectionId}`);
        return { disconnected: connectionId };
      },
    ],
    ['GET', /^\/rooms$/, async () => ({ rooms: await listRooms(sources) })],
    [
      'POST',
      /^\/rooms$/,
      async (_params, req) => {
        const body = await readJson(req);
        const room = requireString(body, 'room');
        const visibility = body.visibility ?? 'private';
        if (visibility !== 'public' && visibility !== 'private')
          throw new AdminBadRequestError('"visibility" must be "public" or "private".');
        const members = stringList(body.members, 'members');
        const owner = typeof body.owner === 'string' && body.owner.trim() !== '' ? body.owner.trim() : undefined;
        const result = await publish().createRoom(room, {
          visibility,
          ...(owner ? { owner } : {}),
          ...(members.length > 0 ? { members } : {}),
        });
        say(
          `${result.created ? 'created' : 'found'} room ${room}${members.length ? `, granted ${members.join(',')}` : ''}`,
        );
        return result;
      },
    ],
    [
      'GET',
      /^\/rooms\/([^/]+)$/,
      async ([room = '']) => {
        const name = decodeSegment(room);
        assertRoomName(name);
        return readRoom(sources, name);
      },
    ],
    [
      'POST',
      /^\/rooms\/([^/]+)\/(grant|revoke)$/,
      async ([room = '', action], req) => {
        const name = decodeSegment(room);
        const users = stringList((await readJson(req)).users, 'users');
        if (users.length === 0) throw new AdminBadRequestError('"users" is required.');
        if (action === 'grant') {
          await publish().grant(name, users);
          say(`granted ${users.join(',')} in ${name}`);
          return { room: name, granted: users };
        }
        const connections = await publish().revoke(name, users);
        say(`revoked ${users.join(',')} from ${name}`);
        return { room: name, revoked: users, connections };
      },
    ],
    [
      'POST',
      /^\/tokens$/,
      async (_params, req) => {
        const { sub, username, groups, ttlSeconds } = identity(await readJson(req), 'sub');
        say(`minted a token for ${sub}${groups.length ? ` (groups ${groups.join(',')})` : ''}`);
        return issuer.mintPair({ sub, username, groups, ttlSeconds });
      },
    ],
    [
      'POST',
      /^\/chat$/,
      async (_params, req) => {
        const body = await readJson(req);
        const { sub, groups } = identity(body, 'user');
        const room = requireString(body, 'room');
        assertRoomName(room);
        const ack = await actAs.send({ user: sub, groups, room, body: messageBody(body) });
        say(`sent #${ack.seq} to ${room} as ${sub}`);
        return { ack };
      },
    ],
    [
      'POST',
      /^\/notify$/,
      async (_params, req) => {
        const body = await readJson(req);
        const users = stringList(body.users ?? body.user, 'users');
        if (users.length === 0) throw new AdminBadRequestError('"users" is required.');
        const outcomes = await publish().notify(users, messageBody(body));
        say(`notified ${users.join(',')}`);
        return { outcomes };
      },
    ],
    [
      'POST',
      /^\/announce$/,
      async (_params, req) => {
        const body = await readJson(req);
        const group = typeof body.group === 'string' && body.group.trim() !== '' ? body.group.trim() : undefined;
        const outcome = await publish().announce(messageBody(body), group ? { group } : {});
        say(`announced to ${group ? `group ${group}` : 'everyone'}`);
        return outcome;
      },
    ],
    [
      'GET',
      /^\/events$/,
      async (_params, _req, url) => {
        // Without `after`: the newest events; with it, the ones that follow it (a poller pages forward).
        const given = url.searchParams.get('after');
        const after = given === null ? undefined : Number(given);
        const limit = Number(url.searchParams.get('limit') ?? BACKLOG_EVENTS);
        if (
          (after !== undefined && (!Number.isSafeInteger(after) || after < 0)) ||
          !Number.isSafeInteger(limit) ||
          limit < 1
        )
          throw new AdminBadRequestError('"after" and "limit" must be whole numbers (limit at least 1).');
        return { events: bus.recent({ ...(after === undefined ? {} : { after }), limit }) };
      },
    ],
    ['GET', /^\/clock$/, async () => clockView()],
    [
      'POST',
      /^\/clock\/advance$/,
      async (_params, req) => {
        const body = await readJson(req);
        const ms =
          (typeof body.ms === 'number' ? body.ms : 0) +
          (typeof body.seconds === 'number' ? body.seconds * 1000 : 0) +
          (typeof body.minutes === 'number' ? body.minutes * 60_000 : 0);
        if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_ADVANCE_MS)
          throw new AdminBadRequestError('Give "ms", "seconds" or "minutes": more than 0 and at most a week.');
        clock.advance(ms);
        say(`moved the clock ${formatDuration(ms)} ahead (now ${new Date(clock()).toISOString()})`);
        // What is due by the new time happens now: API Gateway's idle and 2-hour cuts, IoT's refreshes and
        // disconnectAfterInSeconds, and the scheduled functions: the token sweeper closes the WebSocket
        // connections whose token the move expired.
        const closed = gateway.runDueTimers();
        await iot?.runDueTimers();
        const ran = (await scheduler?.runDue()) ?? {};
        const sweep = ran[TOKEN_SWEEPER_HANDLER] as { closed?: number } | undefined;
        return { clock: clockView(), closedConnections: closed, expiredTokenConnections: sweep?.closed ?? 0 };
      },
    ],
    ['GET', /^\/faults$/, async () => readFaults(registry())],
    [
      'POST',
      /^\/faults$/,
      async (_params, req) => {
        const body = await readJson(req);
        const faults = registry();
        if (faults) {
          let fault: unknown;
          try {
            // Unchecked JSON: add() validates it (parseFaultRule) and names what is wrong.
            fault = faults.add(body as unknown as FaultRuleInput);
          } catch (error) {
            // The registry validates rules; its refusal is about the request, not a failure of ours.
            if (error instanceof Error) throw new AdminBadRequestError(error.message, { cause: error });
            throw error;
          }
          say(`added fault ${describeRule(body)}`);
          return { fault };
        }
        const connectionId = requireString(body, 'connectionId');
        const statuses = Array.isArray(body.statuses) ? body.statuses : [];
        if (statuses.length === 0 || !statuses.every((s) => Number.isInteger(s) && s >= 400 && s <= 599))
          throw new AdminBadRequestError('"statuses" must list HTTP error statuses, e.g. [429, 500].');
        gateway.injectPostFaults(connectionId, statuses as number[]);
        say(`next @connections posts to ${connectionId} answer ${statuses.join(', ')}`);
        return { connectionId, statuses };
      },
    ],
    [
      'DELETE',
      /^\/faults\/([^/]+)$/,
      async ([id = '']) => {
        const faults = registry();
        if (!faults) throw new AdminUnavailableError('This emulator has no fault registry.');
        const faultId = decodeSegment(id);
        if (!faults.remove(faultId)) throw new AdminNotFoundError(`No fault ${faultId}.`);
        say(`removed fault ${faultId}`);
        return { removed: faultId };
      },
    ],
    [
      'DELETE',
      /^\/faults$/,
      async () => {
        const faults = registry();
        if (!faults) throw new AdminUnavailableError('This emulator has no fault registry.');
        faults.clear();
        say('cleared all faults');
        return { cleared: true };
      },
    ],
  ];

  async function serveAsset(req: IncomingMessage, res: ServerResponse, name: ConsoleAssetName): Promise<void> {
    const asset = await assets.get(name);
    const headers = name === 'index.html' ? { 'content-security-policy': pagePolicy(req.headers.host) } : {};
    send(res, 200, asset.contentType, asset.body, headers);
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.slice(ADMIN_API_PREFIX.length);
    const method = req.method ?? 'GET';
    const matching = routes.filter(([, pattern]) => pattern.test(path));
    if (matching.length === 0) throw new AdminNotFoundError(`No admin route ${url.pathname}.`);
    const route = matching.find(([m]) => m === method);
    if (!route) {
      res.setHeader('allow', [...new Set(matching.map(([m]) => m))].join(', '));
      throw new AdminError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}.`);
    }
    const [, pattern, handler] = route;
    const params = (pattern.exec(path) ?? []).slice(1);
    const value = await handler(params, req, url);
    sendJson(res, 200, value);
  }

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = parseRequestUrl(req.url);
    if (url === undefined) return false;
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const page = method === 'GET' && (path === '/' || path === ADMIN_PREFIX || path === `${ADMIN_PREFIX}/`);
    if (!page && !path.startsWith(`${ADMIN_PREFIX}/`)) return false;
    try {
      const api = path.startsWith(`${ADMIN_API_PREFIX}/`);
      const refusal = api ? checkApiRequest(req, access) : checkPeer(req, access);
      if (refusal) throw new AdminForbiddenError(refusal.message);
      if (page) {
        req.resume();
        // The page asks for its script next: the bundle is built once, on the first visit, not at every start
        // (most emulators, the tests' ones, never serve the page).
        assets.warm();
        await serveAsset(req, res, 'index.html');
      } else if (api) {
        await handleApi(req, res, url);
      } else {
        req.resume();
        const name = path.slice(`${ADMIN_PREFIX}/assets/`.length);
        if (method !== 'GET' || !path.startsWith(`${ADMIN_PREFIX}/assets/`) || !isAssetName(name))
          throw new AdminNotFoundError(`Nothing at ${path}.`);
        await serveAsset(req, res, name);
      }
    } catch (thrown) {
      req.resume();
      const error = toAdminError(thrown);
      if (error.status >= 500 && !(error instanceof AdminUnavailableError))
        logger.line('error', 'ADMIN', `${method} ${path}: ${thrown instanceof Error ? thrown.stack : String(thrown)}`);
      else if (error.status === 403) logger.line('warn', 'ADMIN', `refused ${method} ${path}: ${error.message}`);
      if (res.headersSent) res.destroy();
      else sendJson(res, error.status, error.toJSON());
    }
    return true;
  }

  // ---- the event stream ----
  const wss = new WebSocketServer({ noServer: true, clientTracking: true, perMessageDeflate: false });
  const streams = new Set<{ ws: WebSocket; stop: () => void }>();

  function stream(ws: WebSocket): void {
    let queued: AdminEvent[] = [];
    let dropped = 0;
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > STREAM_MAX_BUFFERED) {
        dropped += queued.length;
        queued = [];
        return;
      }
      if (dropped > 0) ws.send(JSON.stringify({ type: 'dropped', count: dropped }));
      dropped = 0;
      if (queued.length > 0) ws.send(JSON.stringify({ type: 'events', events: queued }));
      queued = [];
    };
    const unsubscribe = bus.subscribe((event) => {
      queued.push(event);
      timer ??= setTimeout(flush, STREAM_BATCH_MS);
    });
    const entry = {
      ws,
      stop: () => {
        unsubscribe();
        clearTimeout(timer);
      },
    };
    streams.add(entry);
    ws.on('error', () => {});
    ws.on('close', () => {
      entry.stop();
      streams.delete(entry);
    });
    ws.send(JSON.stringify({ type: 'backlog', events: bus.recent({ limit: BACKLOG_EVENTS }) }));
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = parseRequestUrl(req.url);
    if (url?.pathname !== ADMIN_EVENTS_PATH) return false;
    socket.on('error', () => {});
    const refusal = checkApiRequest(req, access);
    if (refusal) {
      logger.line('warn', 'ADMIN', `refused the event stream: ${refusal.message}`);
      const body = JSON.stringify(new AdminForbiddenError(refusal.message).toJSON());
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return true;
    }
    wss.handleUpgrade(req, socket, head, (ws) => stream(ws));
    return true;
  }

  return {
    handleRequest,
    handleUpgrade,
    async close() {
      for (const entry of streams) {
        entry.stop();
        entry.ws.terminate();
      }
      streams.clear();
      wss.close();
      actAs.close();
      publisher?.close();
      store.destroy();
      dynamodb.destroy();
    },
  };
}

function isAssetName(name: string): name is ConsoleAssetName {
  return name === 'console.js' || name === 'console.css';
}

function describeRule(rule: Record<string, unknown>): string {
  return ['target', 'fault', 'match', 'times', 'probability']
    .filter((key) => rule[key] !== undefined)
    .map((key) => `${key}=${JSON.stringify(rule[key])}`)
    .join(' ');
}

function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
