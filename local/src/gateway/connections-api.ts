/**
 * The `@connections` management API of the emulated WebSocket API, compatible with the real
 * `ApiGatewayManagementApiClient` pointed at `http://HOST:PORT/{stage}`:
 *
 * - `POST /{stage}/@connections/{id}` sends the raw body as one text frame (413 over 128 KB);
 * - `GET` answers `{ connectedAt, identity: { sourceIp, userAgent }, lastActiveAt }` on the wire, which the
 *   SDK returns as `{ ConnectedAt, Identity: { SourceIp, UserAgent }, LastActiveAt }`;
 * - `DELETE` closes the connection (then `$disconnect` runs) and answers 204;
 * - an unknown or closed id answers 410 `GoneException`.
 *
 * Errors carry the `x-amzn-ErrorType` header, which is how the SDK names them (`e.name`). A request without
 * an `Authorization` header (the SDK always signs with SigV4) is refused with 403 `ForbiddenException`;
 * signatures themselves are not checked.
 *
 * Fault injection (../faults/): a signed request first asks the gateway's fault hook, which may answer it 429
 * `LimitExceededException`, 500 `InternalServerErrorException` or 410 `GoneException` (the connection stays
 * open: only its caller is told it is gone, as for a client that vanished), or never answer it (`timeout`).
 * The older per-connection queue of `gateway.injectPostFaults` is asked first, for `POST` only.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultHook } from '../faults/injector.js';
import type { ConnectionsOperation } from '../faults/rules.js';
import type { EmulatorLogger } from '../log.js';
import { parseRequestUrl, type WebSocketGateway } from './websocket-gateway.js';

const CONNECTIONS_SEGMENT = '@connections';

/** Each gateway's fault hook; kept here so the gateway itself knows nothing of fault injection. */
const faultHooks = new WeakMap<WebSocketGateway, FaultHook<'connections'>>();

/** Puts a fault hook in front of `gateway`'s `@connections` API (emulator wiring, see the module's comment). */
export function attachConnectionsFaults(gateway: WebSocketGateway, hook: FaultHook<'connections'>): void {
  faultHooks.set(gateway, hook);
}

/** The status a fault rule answers this call with, `timeout` for no answer, or undefined. */
function injectedFault(
  gateway: WebSocketGateway,
  operation: ConnectionsOperation,
  connectionId: string,
): number | 'timeout' | undefined {
  const hook = faultHooks.get(gateway);
  if (hook === undefined || !hook.armed()) return undefined;
  const fault = hook.decide({ operation, connectionId });
  return fault === undefined || fault === 'timeout' ? fault : Number(fault);
}

const OPERATIONS: Record<string, ConnectionsOperation | undefined> = {
  POST: 'PostToConnection',
  GET: 'GetConnection',
  DELETE: 'DeleteConnection',
};

/** The error type API Gateway names for an injected or real status. */
function errorTypeFor(status: number): string {
  if (status === 410) return 'GoneException';
  if (status === 403) return 'ForbiddenException';
  if (status === 413) return 'PayloadTooLargeException';
  if (status === 429) return 'LimitExceededException';
  if (status === 400) return 'BadRequestException';
  return 'InternalServerErrorException';
}

const ERROR_MESSAGES: Record<string, string | undefined> = {
  ForbiddenException: 'Missing Authentication Token',
  PayloadTooLargeException: 'Message too long',
  LimitExceededException: 'Too Many Requests',
  InternalServerErrorException: 'Internal server error',
  BadRequestException: 'Bad Request',
};

function sendError(res: ServerResponse, status: number): void {
  const type = errorTypeFor(status);
  const message = ERROR_MESSAGES[type];
  // API Gateway answers a gone connection with an empty body; the header alone names the error.
  const body = message === undefined ? '' : JSON.stringify({ message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-amzn-errortype': type,
    'x-amzn-requestid': randomUUID(),
  });
  res.end(body);
}

function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer; tooLarge: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Keep reading (and dropping) so the client gets the 413 rather than a reset connection.
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve({ body: Buffer.concat(chunks), tooLarge }));
    req.on('error', reject);
  });
}

/**
 * Parses `/{stage}/@connections/{url-encoded id}`; returns the decoded id, or `undefined` when the path is
 * not the management API's.
 */
export function parseConnectionsPath(pathname: string, stage: string): string | undefined {
  const prefix = `/${stage}/${CONNECTIONS_SEGMENT}/`;
  if (!pathname.startsWith(prefix)) return undefined;
  const encoded = pathname.slice(prefix.length);
  // Split before decoding: an id may contain '/', which arrives as %2F.
  if (encoded === '' || encoded.includes('/')) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

/** Whether a path is the management API's but its id segment is not valid percent-encoding. */
function hasUndecodableId(pathname: string, stage: string): boolean {
  const prefix = `/${stage}/${CONNECTIONS_SEGMENT}/`;
  const encoded = pathname.startsWith(prefix) ? pathname.slice(prefix.length) : '';
  if (encoded === '' || encoded.includes('/')) return false;
  try {
    decodeURIComponent(encoded);
    return false;
  } catch {
    return true;
  }
}

/**
 * Serves one `@connections` request. Returns `false` (and writes nothing) when the path is not the
 * management API's, so the caller can route it elsewhere.
 * @example
 * http.createServer((req, res) => { if (!(await handleConnectionsRequest(gateway, logger, req, res))) notFound(res); });
 */
export async function handleConnectionsRequest(
  gateway: WebSocketGateway,
  logger: EmulatorLogger,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  // An unparsable request target is not ours; the caller answers it (400).
  const url = parseRequestUrl(req.url);
  if (url === undefined) return false;
  const connectionId = parseConnectionsPath(url.pathname, gateway.stage);
  const method = req.method ?? 'GET';
  if (connectionId === undefined) {
    // A management-API path whose id does not decode (a stray `%`) is a malformed request, not a 404.
    if (!hasUndecodableId(url.pathname, gateway.stage)) return false;
    req.resume();
    sendError(res, 400);
    logger.line('warn', method, `${url.pathname} undecodable connection id 400`);
    return true;
  }
  const user = gateway.userOf(connectionId);
  const log = (status: number, bytes?: number) => {
    const size = bytes === undefined ? '' : ` ${bytes}B`;
    logger.line(
      status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info',
      method,
      `${connectionId} ${user}${size} ${status}`,
    );
  };

  if (!req.headers.authorization) {
    req.resume();
    sendError(res, 403);
    log(403);
    return true;
  }

  const operation = OPERATIONS[method];
  if (method === 'POST') {
    const { body, tooLarge } = await readBody(req, gateway.limits.maxPostBytes);
    const bytes = tooLarge ? Number(req.headers['content-length'] ?? body.length) : body.length;
    const fault = gateway.takePostFault(connectionId) ?? injectedFault(gateway, 'PostToConnection', connectionId);
    if (fault === 'timeout') {
      logger.line('warn', method, `${connectionId} ${user} ${bytes}B held unanswered (fault)`);
      return true;
    }
    const status = fault ?? (tooLarge ? 413 : gateway.post(connectionId, body) ? 200 : 410);
    if (status === 200) {
      res.writeHead(200, { 'content-length': 0, 'x-amzn-requestid': randomUUID() });
      res.end();
    } else {
      sendError(res, status);
    }
    log(status, bytes);
    return true;
  }

  req.resume();
  const fault = operation === undefined ? undefined : injectedFault(gateway, operation, connectionId);
  if (fault === 'timeout') {
    logger.line('warn', method, `${connectionId} ${user} held unanswered (fault)`);
    return true;
  }
  if (fault !== undefined) {
    sendError(res, fault);
    log(fault);
    return true;
  }
  if (method === 'GET') {
    const status = gateway.status(connectionId);
    if (!status) {
      sendError(res, 410);
      log(410);
      return true;
    }
    // The wire names are camelCase (the service model's jsonName); the SDK maps them to ConnectedAt, ...
    const identity: Record<string, string> = { sourceIp: status.sourceIp };
    if (status.userAgent !== undefined) identity.userAgent = status.userAgent;
    const body = JSON.stringify({
      connectedAt: new Date(status.connectedAt).toISOString(),
      identity,
      lastActiveAt: new Date(status.lastActiveAt).toISOString(),
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-amzn-requestid': randomUUID(),
    });
    res.end(body);
    log(200);
    return true;
  }

  if (method === 'DELETE') {
    const status = gateway.disconnect(connectionId) ? 204 : 410;
    if (status === 204) {
      res.writeHead(204, { 'x-amzn-requestid': randomUUID() });
      res.end();
    } else {
      sendError(res, 410);
    }
    log(status);
    return true;
  }

  // API Gateway answers methods it has no operation for as it does unknown resources.
  sendError(res, 403);
  log(403);
  return true;
}
