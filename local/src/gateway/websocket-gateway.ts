/**
 * The emulation of an API Gateway WebSocket API: it accepts upgrades on `/{stage}`, runs the REQUEST
 * authorizer and the `$connect` route before completing them, selects a route for every text message on
 * `$request.body.action`, sends two-way routes' answers back, applies API Gateway's limits, and runs
 * `$disconnect` exactly once whenever a connection ends. Handlers are called only through their Lambda
 * entry points with AWS-shaped events (see ./events.ts).
 *
 * Like API Gateway, messages of one connection are handed to the route handler concurrently, as they
 * arrive: nothing waits for the previous message's invocation, so there is no ordering guarantee between
 * the invocations (clients that need order must carry it in their frames, as ours do with `seq`).
 *
 * Binary frames: the stack configures no binary media types, so, as API Gateway does then, a binary frame
 * runs no route and closes the connection with 1003 (then `$disconnect` runs as for any close).
 *
 * Everything before authentication is reachable by anyone who can reach the port, so the upgrade path
 * never lets client input throw out of it: header and query maps are built without writing through
 * `Object.prototype` keys (`__proto__`, `constructor`, ...), a request line `new URL` cannot parse gets
 * 400, and any other failure gets 500 and a destroyed socket instead of an unhandled error.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  WsAuthorizerEvent,
  WsAuthorizerFields,
  WsAuthorizerResult,
  WsRouteEvent,
  WsRouteResult,
} from '@viba-realtime/lambdas/handlers/events';
import { APIGW_LIMITS, LOCAL_STAGE, WS_HANDLERS, WS_ROUTES } from '@viba-realtime/protocol';
import type { Context } from 'aws-lambda';
import { type WebSocket, WebSocketServer } from 'ws';
import { FunctionTimeoutError } from '../faults/lambda-host.js';
import { createEmulatorLogger, type EmulatorLogger } from '../log.js';
import { type Clock, systemClock } from '../time.js';
import {
  type ApiDescription,
  buildAuthorizerEvent,
  buildConnectEvent,
  buildDisconnectEvent,
  buildLambdaContext,
  buildMessageEvent,
  type ConnectionDescription,
  connectMethodArn,
  LOCAL_ACCOUNT_ID,
  newGatewayId,
} from './events.js';
import { FrameGuard } from './frame-guard.js';
import { isAllowed } from './policy.js';

/** The Lambda entry point of the REQUEST authorizer. */
export type AuthorizerFunction = (event: WsAuthorizerEvent, context?: Context) => Promise<WsAuthorizerResult>;
/** The Lambda entry point serving the routes. */
export type RoutesFunction = (event: WsRouteEvent, context?: Context) => Promise<WsRouteResult>;

/** API Gateway's service limits as the emulator applies them (defaults: `APIGW_LIMITS`). */
export interface GatewayLimits {
  /** Largest message, all frames together; larger closes with 1009. */
  maxMessageBytes: number;
  /** Largest single frame; larger closes with 1009. */
  maxFrameBytes: number;
  /** A connection with no message from its client for this long is closed with 1001. */
  idleTimeoutMs: number;
  /** A connection is closed with 1001 after this long, whatever it does. */
  maxConnectionMs: number;
  /** Largest `@connections` POST body; larger answers 413. */
  maxPostBytes: number;
}

/** Options of {@link WebSocketGateway}. */
export interface WebSocketGatewayOptions {
  /** The `$connect` authorizer's Lambda entry point. */
  authorizer: AuthorizerFunction;
  /** The routes' Lambda entry point. */
  routes: RoutesFunction;
  /** @default 'local' (`LOCAL_STAGE`) */
  stage?: string;
  /** @default 'us-east-1' */
  region?: string;
  /** @default 'localapi01' */
  apiId?: string;
  /** @default '000000000000' */
  accountId?: string;
  /** Overrides of API Gateway's limits, for tests. @default APIGW_LIMITS */
  limits?: Partial<GatewayLimits>;
  /** Time of events and `@connections` answers. Limit timers run on real time; {@link WebSocketGateway.runDueTimers}
   * applies the limits by this clock. @default the system clock */
  clock?: Clock;
  /** @default an `info` logger printing to the console */
  logger?: EmulatorLogger;
}

/** What `GET @connections/{id}` reports. */
export interface ConnectionStatus {
  /** Epoch ms. */
  connectedAt: number;
  /** Epoch ms of the last message from the client (or the connect). */
  lastActiveAt: number;
  sourceIp: string;
  userAgent: string | undefined;
}

interface LiveConnection {
  description: ConnectionDescription;
  authorizer: WsAuthorizerFields;
  ws: WebSocket;
  user: string;
  lastActiveAt: number;
  /** Set when the gateway itself closes the connection: the code and reason `$disconnect` reports. */
  serverClose?: { code: number; reason: string };
  /** Dropped by {@link WebSocketGateway.vanish}: no `$disconnect`. */
  vanished: boolean;
  idleTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
  closed: Promise<void>;
}

/** Thrown into the upgrade flow to refuse a connection with an HTTP status. */
class UpgradeRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}`);
    this.name = 'UpgradeRefusal';
  }
}

const CUSTOM_ROUTE_KEYS: ReadonlySet<string> = new Set(
  WS_ROUTES.filter((r) => !r.routeKey.startsWith('$')).map((r) => r.routeKey),
);
const TWO_WAY_ROUTES: ReadonlySet<string> = new Set(WS_ROUTES.filter((r) => r.returnResponse).map((r) => r.routeKey));

/** What API Gateway reports to `$disconnect` when the client closed without a status code. */
const NO_STATUS_REASON = 'Client-side close frame status not set';

/** Close codes and reasons the gateway uses itself. */
export const GATEWAY_CLOSE = {
  messageTooBig: { code: 1009, reason: 'Message too big' },
  idle: { code: 1001, reason: 'Going away' },
  maxDuration: { code: 1001, reason: 'Going away' },
  // The reason API Gateway reports to $disconnect after DeleteConnection (seen in AWS logs quoted in
  // aws/chalice#2060).
  deleted: { code: 1000, reason: 'Connection Closed Normally' },
  // Docs: with no binary media types, a binary frame is rejected with 1003. They give no reason text.
  binaryFrame: { code: 1003, reason: '' },
  shutdown: { code: 1001, reason: 'Going away' },
} as const;

/**
 * The route of a text message by `$request.body.action` (falling back to `$default`) and its `room`, for the
 * log's structured fields (the console filters events by room): one parse of the frame for both.
 */
function readFrame(body: string): { routeKey: string; room: string | undefined } {
  try {
    const frame: unknown = JSON.parse(body);
    if (typeof frame === 'object' && frame !== null && !Array.isArray(frame)) {
      const { action, room } = frame as Record<string, unknown>;
      return {
        routeKey: typeof action === 'string' && CUSTOM_ROUTE_KEYS.has(action) ? action : '$default',
        room: typeof room === 'string' ? room : undefined,
      };
    }
  } catch {
    // Not JSON: API Gateway cannot evaluate the selection expression and uses $default.
  }
  return { routeKey: '$default', room: undefined };
}

/** Picks the route of a text message by `$request.body.action`, falling back to `$default`. */
export function selectRoute(body: string): string {
  return readFrame(body).routeKey;
}

function errorBody(message: string): string {
  return JSON.stringify({ message });
}

function refusalFor(status: number): UpgradeRefusal {
  const messages: Record<number, string> = {
    401: 'Unauthorized',
    403: 'Forbidden',
    500: 'Internal server error',
  };
  return new UpgradeRefusal(status, errorBody(messages[status] ?? STATUS_CODES[status] ?? 'Error'));
}

/** Writes a plain HTTP answer on a socket that asked to upgrade, as API Gateway does, and ends it. */
function writeHttpRefusal(socket: Duplex, status: number, body: string): void {
  if (socket.destroyed) return;
  const payload = Buffer.from(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${payload.length}\r\n` +
      `x-amzn-RequestId: ${randomUUID()}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  // end() flushes the answer; destroy soon after so a client that keeps the socket open cannot hold it.
  setTimeout(() => socket.destroy(), 100).unref();
}

/**
 * Header maps of the event. Collected in a Map (keyed case-insensitively, keeping the first spelling) and
 * turned into plain objects only at the end with `Object.fromEntries`, which defines own properties: a
 * client header named `__proto__` or `constructor` becomes an ordinary key, as JSON parsing of the AWS
 * event would make it, instead of reading or writing `Object.prototype`.
 */
export function headerMaps(rawHeaders: readonly string[], sourceIp: string, localPort: number) {
  const byLowerName = new Map<string, { name: string; values: string[] }>();
  const add = (name: string, value: string) => {
    const entry = byLowerName.get(name.toLowerCase());
    if (entry) entry.values.push(value);
    else byLowerName.set(name.toLowerCase(), { name, values: [value] });
  };
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) add(rawHeaders[i] as string, rawHeaders[i + 1] as string);
  // API Gateway adds these in front of the integration.
  const addMissing = (name: string, value: string) => {
    if (!byLowerName.has(name.toLowerCase())) add(name, value);
  };
  addMissing('X-Forwarded-For', sourceIp);
  addMissing('X-Forwarded-Port', String(localPort));
  addMissing('X-Forwarded-Proto', 'http');
  addMissing(
    'X-Amzn-Trace-Id',
    `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replaceAll('-', '').slice(0, 24)}`,
  );
  const entries = [...byLowerName.values()];
  const multiValueHeaders: Record<string, string[]> = Object.fromEntries(entries.map((e) => [e.name, e.values]));
  const headers: Record<string, string> = Object.fromEntries(entries.map((e) => [e.name, e.values.join(',')]));
  return { headers, multiValueHeaders };
}

/** Query maps of the event; a Map first for the same reason as {@link headerMaps}. */
export function queryMaps(params: URLSearchParams) {
  const byName = new Map<string, string[]>();
  for (const [k, v] of params) {
    const values = byName.get(k);
    if (values) values.push(v);
    else byName.set(k, [v]);
  }
  const multi: Record<string, string[]> = Object.fromEntries(byName);
  // API Gateway's single-value map keeps the last value of a repeated parameter.
  const single: Record<string, string> = Object.fromEntries(
    [...byName].map(([k, v]) => [k, v[v.length - 1] as string]),
  );
  return { single, multi };
}

/** Parses a request target, or `undefined` when it is not a valid URL (e.g. `http://[`): that is a 400. */
export function parseRequestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * The API Gateway WebSocket emulation. Wire {@link handleUpgrade} to an HTTP server's `upgrade` event;
 * the `@connections` API (./connections-api.ts) drives {@link post}, {@link status} and {@link disconnect}.
 * @example
 * const gateway = new WebSocketGateway({ authorizer, routes });
 * server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
 */
export class WebSocketGateway {
  readonly stage: string;
  readonly limits: GatewayLimits;
  readonly api: ApiDescription;
  private readonly authorizer: AuthorizerFunction;
  private readonly routes: RoutesFunction;
  private readonly clock: Clock;
  private readonly logger: EmulatorLogger;
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, LiveConnection>();
  private readonly pendingUpgrades = new Set<Duplex>();
  /** Closed by the gateway (so no longer in `connections`) but not yet through ws's 'close'. */
  private readonly closingConnections = new Set<LiveConnection>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly postFaults = new Map<string, number[]>();
  private closing = false;

  constructor(options: WebSocketGatewayOptions) {
    this.authorizer = options.authorizer;
    this.routes = options.routes;
    this.stage = options.stage ?? LOCAL_STAGE;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createEmulatorLogger();
    this.limits = { ...APIGW_LIMITS, ...options.limits };
    this.api = {
      apiId: options.apiId ?? 'localapi01',
      stage: this.stage,
      region: options.region ?? 'us-east-1',
      accountId: options.accountId ?? LOCAL_ACCOUNT_ID,
    };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: this.limits.maxMessageBytes,
      // API Gateway does not negotiate compression; the frame guard relies on that too.
      perMessageDeflate: false,
    });
  }

  /** Whether a request path is this gateway's WebSocket endpoint (`/{stage}`). */
  isGatewayPath(pathname: string): boolean {
    return pathname === `/${this.stage}` || pathname === `/${this.stage}/`;
  }

  /**
   * Handles an HTTP upgrade request: authorizer, `$connect`, then the WebSocket handshake. A refusal is
   * answered with a plain HTTP status (401, 403, 500 or `$connect`'s own status) and no route runs after
   * a refusing authorizer.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A client that resets mid-handshake must not crash the emulator.
    socket.on('error', () => {});
    // This runs inside the HTTP server's 'upgrade' emit: anything thrown here would be an uncaught
    // exception and end the process, for a request nobody has authenticated yet.
    try {
      this.startUpgrade(req, socket, head);
    } catch (error) {
      this.failUpgrade(socket, 'upgrade', error);
    }
  }

  /** Answers 500 (our bug, as API Gateway's internal error) and makes sure the socket goes away. */
  private failUpgrade(socket: Duplex, where: string, error: unknown): void {
    this.logger.line('error', 'ERROR', `${where}: ${error instanceof Error ? error.stack : String(error)}`);
    try {
      writeHttpRefusal(socket, 500, errorBody('Internal server error'));
    } catch {
      socket.destroy();
    }
  }

  private startUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = parseRequestUrl(req.url);
    if (url === undefined) {
      writeHttpRefusal(socket, 400, errorBody('Bad Request'));
      return;
    }
    if (!this.isGatewayPath(url.pathname)) {
      writeHttpRefusal(socket, 404, errorBody(`No WebSocket API here: connect to /${this.stage}`));
      return;
    }
    if (this.closing) {
      writeHttpRefusal(socket, 503, errorBody('Service Unavailable'));
      return;
    }
    // Checked before any Lambda runs: ws would refuse these after $connect had already stored the connection.
    const version = req.headers['sec-websocket-version'];
    if (
      (req.headers.upgrade ?? '').toLowerCase() !== 'websocket' ||
      !req.headers['sec-websocket-key'] ||
      (version !== '13' && version !== '8')
    ) {
      writeHttpRefusal(socket, 400, errorBody('Bad Request'));
      return;
    }
    this.pendingUpgrades.add(socket);
    this.track(this.runUpgrade(req, socket, head, url))
      // runUpgrade answers its own failures; this catches what escapes it, so no rejection is ever unhandled.
      .catch((error: unknown) => this.failUpgrade(socket, 'upgrade', error))
      .finally(() => this.pendingUpgrades.delete(socket));
  }

  private async runUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const started = performance.now();
    const id = newGatewayId();
    let user = '-';
    try {
      const connectedAt = this.clock();
      const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
      const { headers, multiValueHeaders } = headerMaps(req.rawHeaders, sourceIp, req.socket.localPort ?? 0);
      const query = queryMaps(url.searchParams);
      const userAgent = req.headers['user-agent'];
      const description: ConnectionDescription = {
        connectionId: id,
        connectedAt,
        domainName: req.headers.host ?? 'localhost',
        identity: userAgent === undefined ? { sourceIp } : { sourceIp, userAgent },
        headers,
        multiValueHeaders,
        queryStringParameters: query.single,
        multiValueQueryStringParameters: query.multi,
      };
      const authorizer = await this.authorize(description);
      user = String(authorizer.username ?? authorizer.principalId);
      const connectResult = await this.invokeRoutes(buildConnectEvent(this.api, description, authorizer, this.clock()));
      if (connectResult.statusCode < 200 || connectResult.statusCode > 299) {
        throw new UpgradeRefusal(connectResult.statusCode, connectResult.body ?? '');
      }
      if (socket.destroyed || this.closing) {
        // $connect stored the connection, so it must hear that it ended.
        this.logConnect('warn', id, user, 'client left during $connect', started);
        await this.invokeDisconnect(description, authorizer, { statusCode: 1006, reason: NO_STATUS_REASON }, user);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.register(ws, socket, description, authorizer, user));
      this.logConnect('info', id, user, '101', started);
    } catch (error) {
      const refusal = error instanceof UpgradeRefusal ? error : refusalFor(500);
      if (!(error instanceof UpgradeRefusal)) {
        this.logger.line('error', 'ERROR', `${id} connect: ${error instanceof Error ? error.stack : String(error)}`);
      }
      this.logConnect(refusal.status >= 500 ? 'error' : 'warn', id, user, String(refusal.status), started);
      writeHttpRefusal(socket, refusal.status, refusal.body);
    }
  }

  /** Runs the authorizer and turns its answer into `requestContext.authorizer`, or throws a refusal. */
  private async authorize(description: ConnectionDescription): Promise<WsAuthorizerFields> {
    const event = buildAuthorizerEvent(this.api, description, this.clock());
    const started = performance.now();
    let result: WsAuthorizerResult;
    try {
      result = await this.track(this.authorizer(event, buildLambdaContext(`viba-${WS_HANDLERS.authorizer}`, this.api)));
    } catch (error) {
      // The one error message API Gateway treats as "no credentials" rather than a failure.
      if (error instanceof Error && error.message === 'Unauthorized') throw refusalFor(401);
      this.logger.line(
        'error',
        'ERROR',
        `${description.connectionId} authorizer threw: ${error instanceof Error ? error.stack : String(error)}`,
      );
      throw refusalFor(500);
    }
    const integrationLatency = Math.round(performance.now() - started);
    if (typeof result?.principalId !== 'string' || !result.policyDocument) {
      this.logger.line(
        'error',
        'ERROR',
        `${description.connectionId} authorizer answered without principalId/policyDocument`,
      );
      throw refusalFor(500);
    }
    if (!isAllowed(result, connectMethodArn(this.api))) throw refusalFor(403);
    const context = result.context ?? {};
    for (const [key, value] of Object.entries(context)) {
      // API Gateway refuses (500) an authorizer context with non-primitive values.
      if (value !== null && typeof value === 'object') {
        this.logger.line(
          'error',
          'ERROR',
          `${description.connectionId} authorizer context.${key} is not a string, number or boolean`,
        );
        throw refusalFor(500);
      }
    }
    return {
      ...(context as Record<string, string | number | boolean>),
      principalId: result.principalId,
      integrationLatency,
    };
  }

  private register(
    ws: WebSocket,
    socket: Duplex,
    description: ConnectionDescription,
    authorizer: WsAuthorizerFields,
    user: string,
  ): void {
    let resolveClosed!: () => void;
    const connection: LiveConnection = {
      description,
      authorizer,
      ws,
      user,
      lastActiveAt: description.connectedAt,
      vanished: false,
      closed: new Promise<void>((resolve) => {
        resolveClosed = resolve;
      }),
    };
    const id = description.connectionId;
    this.connections.set(id, connection);

    // Registered before ws's own 'data' listener so a frame's header is checked before ws delivers it.
    const guard = new FrameGuard(this.limits.maxFrameBytes, (length) => {
      this.logger.line('warn', 'LIMIT', `${id} ${user} frame of ${length} bytes > ${this.limits.maxFrameBytes}: 1009`);
      this.closeFromServer(connection, GATEWAY_CLOSE.messageTooBig);
    });
    socket.prependListener('data', (chunk: Buffer) => guard.push(chunk));

    connection.idleTimer = setTimeout(() => this.closeIdle(connection), this.limits.idleTimeoutMs);
    connection.lifetimeTimer = setTimeout(() => this.closeAtMaxDuration(connection), this.limits.maxConnectionMs);

    ws.on('message', (data, isBinary) => this.onMessage(connection, data as Buffer, isBinary));
    ws.on('error', (error: Error & { code?: string }) => {
      // ws closes with 1009 itself when a message exceeds maxPayload; $disconnect must report that code.
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.logger.line('warn', 'LIMIT', `${id} ${user} message > ${this.limits.maxMessageBytes} bytes: 1009`);
        connection.serverClose ??= GATEWAY_CLOSE.messageTooBig;
        this.connections.delete(id);
        this.closingConnections.add(connection);
        return;
      }
      this.logger.line('warn', 'ERROR', `${id} ${user} socket: ${error.message}`);
    });
    ws.on('close', (code, reason) => {
      this.closingConnections.delete(connection);
      clearTimeout(connection.idleTimer);
      clearTimeout(connection.lifetimeTimer);
      if (this.connections.get(id) === connection) this.connections.delete(id);
      resolveClosed();
      if (connection.vanished) return;
      const close = connection.serverClose ?? {
        code,
        reason: reason.length > 0 ? reason.toString() : code === 1005 || code === 1006 ? NO_STATUS_REASON : '',
      };
      this.track(
        this.invokeDisconnect(description, authorizer, { statusCode: close.code, reason: close.reason }, user),
      );
    });
  }

  private onMessage(connection: LiveConnection, data: Buffer, isBinary: boolean): void {
    // Frames that arrive after the gateway decided to close (e.g. the rest of an oversized frame) are dropped.
    if (connection.serverClose || connection.vanished) return;
    const { connectionId: id } = connection.description;
    if (isBinary) {
      this.logger.line('warn', 'LIMIT', `${id} ${connection.user} binary frame (no binary media types): 1003`);
      this.closeFromServer(connection, GATEWAY_CLOSE.binaryFrame);
      return;
    }
    connection.lastActiveAt = this.clock();
    connection.idleTimer?.refresh();
    const body = data.toString('utf8');
    const { routeKey, room } = readFrame(body);
    const event = buildMessageEvent(
      this.api,
      connection.description,
      connection.authorizer,
      { routeKey, body, isBase64Encoded: false },
      this.clock(),
    );
    this.track(this.runRoute(connection, event, room));
  }

  private async runRoute(connection: LiveConnection, event: WsRouteEvent, room: string | undefined): Promise<void> {
    const { routeKey, connectionId: id, requestId } = event.requestContext;
    const started = performance.now();
    let answer: string | undefined;
    // What API Gateway sends the caller when the integration fails.
    const internalError = () => JSON.stringify({ message: 'Internal server error', connectionId: id, requestId });
    try {
      const result = await this.invokeRoutes(event);
      this.logRoute(
        result.statusCode >= 500 ? 'error' : 'info',
        routeKey,
        id,
        connection.user,
        String(result.statusCode),
        started,
        room,
      );
      if (TWO_WAY_ROUTES.has(routeKey) && typeof result.body === 'string') answer = result.body;
      const bytes = answer === undefined ? 0 : Buffer.byteLength(answer);
      if (bytes > this.limits.maxMessageBytes) {
        // A route response is a message too, so the 128 KB payload limit applies; AWS does not document
        // what happens over it. Best understanding: an integration failure, so never the oversized body.
        this.logger.line(
          'error',
          'ERROR',
          `${id} ${routeKey}: response of ${bytes} bytes > ${this.limits.maxMessageBytes}: Internal server error`,
        );
        answer = internalError();
      }
    } catch (error) {
      this.logRoute('error', routeKey, id, connection.user, 'threw', started, room);
      this.logger.line('error', 'ERROR', `${id} ${routeKey}: ${error instanceof Error ? error.stack : String(error)}`);
      // A Lambda past its timeout: what WebSocket clients of API Gateway report (Kludex/mangum#128, aws/chalice#1406).
      answer =
        error instanceof FunctionTimeoutError
          ? JSON.stringify({ message: 'Endpoint request timed out', connectionId: id, requestId })
          : internalError();
    }
    if (answer !== undefined && this.connections.get(id) === connection) connection.ws.send(answer);
  }

  private invokeRoutes(event: WsRouteEvent): Promise<WsRouteResult> {
    return this.track(this.routes(event, buildLambdaContext(`viba-${WS_HANDLERS.routes}`, this.api)));
  }

  private async invokeDisconnect(
    description: ConnectionDescription,
    authorizer: WsAuthorizerFields,
    close: { statusCode: number; reason: string },
    user: string,
  ): Promise<void> {
    const started = performance.now();
    const event = buildDisconnectEvent(this.api, description, authorizer, close, this.clock());
    const what = `${close.statusCode}${close.reason ? ` '${close.reason}'` : ''}`;
    try {
      const result = await this.invokeRoutes(event);
      this.logRoute('info', '$disconnect', description.connectionId, user, `${what} -> ${result.statusCode}`, started);
    } catch (error) {
      this.logRoute('error', '$disconnect', description.connectionId, user, `${what} -> threw`, started);
      this.logger.line(
        'error',
        'ERROR',
        `${description.connectionId} $disconnect: ${error instanceof Error ? error.stack : String(error)}`,
      );
    }
  }

  /** Closes a connection from the gateway's side; `$disconnect` then reports `close`. Idempotent. */
  private closeFromServer(connection: LiveConnection, close: { code: number; reason: string }): void {
    if (connection.serverClose || connection.vanished) return;
    connection.serverClose = close;
    // From this moment @connections answers 410, as API Gateway does for a closing connection.
    this.connections.delete(connection.description.connectionId);
    this.closingConnections.add(connection);
    connection.ws.close(close.code, close.reason);
  }

  /** Sends data to a connection as one text frame; `false` when the connection is gone. */
  post(connectionId: string, data: Buffer): boolean {
    const connection = this.connections.get(connectionId);
    if (!connection || connection.ws.readyState !== connection.ws.OPEN) return false;
    // API Gateway delivers @connections data as text frames.
    connection.ws.send(data, { binary: false });
    return true;
  }

  /** What `GET @connections/{id}` answers, or `undefined` when the connection is gone. */
  status(connectionId: string): ConnectionStatus | undefined {
    const connection = this.connections.get(connectionId);
    if (!connection) return undefined;
    return {
      connectedAt: connection.description.connectedAt,
      lastActiveAt: connection.lastActiveAt,
      sourceIp: connection.description.identity.sourceIp,
      userAgent: connection.description.identity.userAgent,
    };
  }

  /** Closes a connection as `DELETE @connections/{id}` does; `false` when it is gone. */
  disconnect(connectionId: string): boolean {
    const connection = this.connections.get(connectionId);
    if (!connection) return false;
    this.closeFromServer(connection, GATEWAY_CLOSE.deleted);
    return true;
  }

  /** The user a connection belongs to, for log lines (`-` when unknown). */
  userOf(connectionId: string): string {
    return this.connections.get(connectionId)?.user ?? '-';
  }

  /**
   * Emulator-only fault injection: drops the socket WITHOUT running `$disconnect`, modelling API Gateway's
   * best-effort `$disconnect`. Later `@connections` calls get 410 while the store still holds the connection.
   * Returns `false` when there is no such connection.
   */
  vanish(connectionId: string): boolean {
    const connection = this.connections.get(connectionId);
    if (!connection) return false;
    connection.vanished = true;
    this.connections.delete(connectionId);
    connection.ws.terminate();
    return true;
  }

  /**
   * Emulator-only fault injection: the next `@connections` POSTs to `connectionId` answer these statuses
   * in order (e.g. `[429, 500]`) before the following one succeeds. Adds to faults already queued.
   */
  injectPostFaults(connectionId: string, statuses: readonly number[]): void {
    this.postFaults.set(connectionId, [...(this.postFaults.get(connectionId) ?? []), ...statuses]);
  }

  /** Takes the next injected fault status for a POST to `connectionId`, if any. */
  takePostFault(connectionId: string): number | undefined {
    const queue = this.postFaults.get(connectionId);
    const status = queue?.shift();
    if (queue && queue.length === 0) this.postFaults.delete(connectionId);
    return status;
  }

  /**
   * Closes the connections whose 2-hour or idle limit is due by the emulator's clock, as the limit timers would.
   * Those timers run on real time; whoever moves the clock forward (the console, a test) calls this instead of
   * waiting. Returns how many connections it closed.
   */
  runDueTimers(): number {
    const now = this.clock();
    let closed = 0;
    for (const connection of [...this.connections.values()]) {
      if (now - connection.description.connectedAt >= this.limits.maxConnectionMs) {
        this.closeAtMaxDuration(connection);
        closed++;
      } else if (now - connection.lastActiveAt >= this.limits.idleTimeoutMs) {
        this.closeIdle(connection);
        closed++;
      }
    }
    return closed;
  }

  /** API Gateway's idle timeout: no message from the client for `idleTimeoutMs`. */
  private closeIdle(connection: LiveConnection): void {
    const { connectionId: id } = connection.description;
    this.logger.line('info', 'LIMIT', `${id} ${connection.user} idle for ${this.limits.idleTimeoutMs}ms: 1001`);
    this.closeFromServer(connection, GATEWAY_CLOSE.idle);
  }

  /** API Gateway's maximum connection duration. */
  private closeAtMaxDuration(connection: LiveConnection): void {
    const { connectionId: id } = connection.description;
    this.logger.line('info', 'LIMIT', `${id} ${connection.user} reached ${this.limits.maxConnectionMs}ms: 1001`);
    this.closeFromServer(connection, GATEWAY_CLOSE.maxDuration);
  }

  /** Ids of the open connections. */
  connectionIds(): string[] {
    return [...this.connections.keys()];
  }

  /**
   * Resolves once no connection is half-closed and no authorizer or route invocation is running. A test
   * that saw its socket close awaits this to know `$disconnect` has run: the client's 'close' event can
   * come before the gateway's, just as in AWS `$disconnect` runs after the client is gone.
   */
  async settled(): Promise<void> {
    for (;;) {
      const closing = [
        ...this.closingConnections,
        // The client started the close: ws is CLOSING from the close frame until the socket ends.
        ...[...this.connections.values()].filter((c) => c.ws.readyState !== c.ws.OPEN),
      ];
      if (closing.length === 0 && this.inFlight.size === 0) return;
      await Promise.all(closing.map((c) => c.closed));
      await Promise.allSettled([...this.inFlight]);
    }
  }

  /**
   * Closes every connection with 1001 'Going away' (each gets its `$disconnect`), refuses new ones, and
   * waits for the invocations to finish. Sockets whose clients do not answer the close are cut after 1 s.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const socket of this.pendingUpgrades) socket.destroy();
    const open = [...this.connections.values()];
    for (const connection of open) this.closeFromServer(connection, GATEWAY_CLOSE.shutdown);
    const cut = setTimeout(() => {
      for (const connection of open) connection.ws.terminate();
    }, 1000);
    await Promise.all(open.map((c) => c.closed));
    clearTimeout(cut);
    await this.settled();
    this.wss.close();
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const done = () => this.inFlight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  private logConnect(level: 'info' | 'warn' | 'error', id: string, user: string, status: string, started: number) {
    this.logger.line(level, 'CONNECT', `${id} ${user} ${status} ${Math.round(performance.now() - started)}ms`);
  }

  private logRoute(
    level: 'info' | 'warn' | 'error',
    routeKey: string,
    id: string,
    user: string,
    status: string,
    started: number,
    room?: string,
  ) {
    const kind = routeKey === '$disconnect' ? 'DISCONN' : routeKey.toUpperCase().replace('$', '');
    this.logger.line(level, kind, `${id} ${user} ${status} ${Math.round(performance.now() - started)}ms`, {
      connectionId: id,
      user,
      ...(room === undefined ? {} : { room }),
    });
  }
}
