/**
 * The emulator's single HTTP port: the WebSocket API (upgrades on `/{stage}`), its `@connections`
 * management API, the dev issuer's JWKS at Cognito's path, the emulator-only `/dev/token`, SQS's JSON API
 * (requests with `x-amz-target: AmazonSQS.*`) and, with IoT Core emulated, MQTT over WebSocket (upgrades on
 * `/mqtt`) and the IoT data plane (`POST /topics/{topic}`, `GET`/`DELETE /connections/{clientId}`).
 * `/dev/token` and the JWKS answer CORS (any origin), so a web page on another port (`demo/`) can use them.
 * With the console on, its page (`/`), admin API (`/_admin/`) and event stream (upgrades on `/_admin/events`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CLIENT_CONFIG_PATH, type RealtimeClientConfig } from '@viba-realtime/protocol';
import type { AdminApi } from './admin/api.js';
import type { Broker } from './broker/broker.js';
import { handleConnectionsRequest } from './gateway/connections-api.js';
import { parseRequestUrl, type WebSocketGateway } from './gateway/websocket-gateway.js';
import type { DevIssuer } from './identity/dev-issuer.js';
import { parseDevTokenQuery } from './identity/dev-token-query.js';
import { handleDataPlaneRequest } from './iot/data-plane.js';
import type { EmulatorLogger } from './log.js';
import { isLoopbackHost } from './loopback.js';
import { handleSqsRequest, type LocalSqs } from './queue/sqs-api.js';

/** Options of {@link createLocalHttpServer}. */
export interface LocalHttpServerOptions {
  gateway: WebSocketGateway;
  issuer: DevIssuer;
  logger: EmulatorLogger;
  /** The IoT Core emulation's broker: serves `/mqtt` upgrades, `POST /topics/{topic}` and `/connections/{clientId}`. */
  broker?: Broker;
  /** The SQS emulation: serves `POST` requests with `x-amz-target: AmazonSQS.*` (on any path). */
  sqs?: LocalSqs;
  /** The backend publisher's settings for this emulator, served at `GET /dev/config` to loopback clients
   * (undefined until the emulator knows its ports). */
  publisherConfig?: () => Record<string, unknown> | undefined;
  /** A client app's config (`RealtimeClientConfig`), served at `GET /dev/client-config` with CORS: endpoints
   * only, the same a deployed stack publishes as its `ClientConfig` output. */
  clientConfig?: () => RealtimeClientConfig | undefined;
  /** The console: its page at `/`, the admin API under `/_admin/` and the `/_admin/events` upgrade (undefined
   * until the emulator has built it, and without a console). */
  admin?: () => AdminApi | undefined;
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

/**
 * CORS for the paths a web page calls directly: `/dev/token` (a page on Vite's origin gets its tokens there,
 * see `demo/`) and the JWKS (public keys, public in Cognito too). Any origin: these are emulator-only or public.
 * `/dev/config` gets none: it stays for loopback tools.
 */
const CORS_HEADERS: Record<string, string> = { 'access-control-allow-origin': '*' };

/** Answers a CORS preflight: GET only, the request headers it asked for, cached for 10 minutes. */
function sendPreflight(req: IncomingMessage, res: ServerResponse): void {
  const requested = req.headers['access-control-request-headers'];
  res.writeHead(204, {
    ...CORS_HEADERS,
    'access-control-allow-methods': 'GET, OPTIONS',
    ...(typeof requested === 'string' ? { 'access-control-allow-headers': requested } : {}),
    'access-control-max-age': '600',
    vary: 'Access-Control-Request-Headers',
    'content-length': '0',
  });
  res.end();
}

/** `/{userPoolId}/.well-known/jwks.json`, Cognito's JWKS path under its issuer URL. */
export function jwksPath(userPoolId: string): string {
  return `/${userPoolId}/.well-known/jwks.json`;
}

/**
 * Creates (does not start) the emulator's HTTP server.
 * @example
 * const server = createLocalHttpServer({ gateway, issuer, logger });
 * server.listen(0, '127.0.0.1');
 */
export function createLocalHttpServer(options: LocalHttpServerOptions): Server {
  const { gateway, issuer, logger, broker, sqs } = options;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // First: SQS requests are recognised by their header alone, and their path is `/`.
    if (sqs && (await handleSqsRequest(sqs, logger, req, res))) return;
    if (await handleConnectionsRequest(gateway, logger, req, res)) return;
    if (broker && (await handleDataPlaneRequest(broker, logger, req, res))) return;
    if (await options.admin?.()?.handleRequest(req, res)) return;
    req.resume();
    const url = parseRequestUrl(req.url);
    if (url === undefined) {
      // A request target like `http://[` that URL cannot parse: the client's fault, not a 500.
      sendJson(res, 400, { message: 'Bad Request' });
      return;
    }
    const isJwks = url.pathname === jwksPath(issuer.userPoolId);
    const isCorsPath = isJwks || url.pathname === '/dev/token' || url.pathname === CLIENT_CONFIG_PATH;
    if (req.method === 'OPTIONS' && isCorsPath) {
      sendPreflight(req, res);
      return;
    }
    if (req.method === 'GET' && isJwks) {
      sendJson(res, 200, issuer.jwks(), CORS_HEADERS);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/dev/token') {
      const parsed = parseDevTokenQuery(url.searchParams);
      if (!parsed.ok) {
        logger.line('warn', 'TOKEN', `400 ${parsed.parameter}: ${parsed.message}`);
        const error = { error: 'invalid_parameter', parameter: parsed.parameter, message: parsed.message };
        sendJson(res, 400, error, CORS_HEADERS);
        return;
      }
      const { sub, username, groups, ttlSeconds } = parsed.value;
      logger.line('debug', 'TOKEN', `${sub} groups=${groups.join(',') || '-'} ttl=${ttlSeconds}s`);
      sendJson(res, 200, issuer.mintPair({ sub, username, groups, ttlSeconds }), CORS_HEADERS);
      return;
    }
    if (req.method === 'GET' && url.pathname === CLIENT_CONFIG_PATH) {
      const config = options.clientConfig?.();
      if (config === undefined) sendJson(res, 404, { message: 'Not Found' }, CORS_HEADERS);
      else sendJson(res, 200, config, CORS_HEADERS);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/dev/config') {
      const config = options.publisherConfig?.();
      // Endpoints and dummy credentials only, but still nothing for a client beyond this machine.
      if (config === undefined || !isLoopbackHost(req.socket.remoteAddress ?? '')) {
        sendJson(res, 404, { message: 'Not Found' });
        return;
      }
      sendJson(res, 200, config);
      return;
    }
    if (gateway.isGatewayPath(url.pathname)) {
      sendJson(res, 426, { message: `Upgrade Required: open a WebSocket to this URL (ws://.../${gateway.stage})` });
      return;
    }
    sendJson(res, 404, { message: 'Not Found' });
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      logger.line(
        'error',
        'ERROR',
        `${req.method} ${req.url}: ${error instanceof Error ? error.stack : String(error)}`,
      );
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
      else res.destroy();
    });
  });
  // Both handleUpgrade catch their own errors; they must, since a throw in this emit would end the process.
  // The broker takes `/mqtt` and touches nothing else; every other path is the API Gateway emulation's.
  server.on('upgrade', (req, socket, head) => {
    if (broker?.handleUpgrade(req, socket, head)) return;
    if (options.admin?.()?.handleUpgrade(req, socket, head)) return;
    gateway.handleUpgrade(req, socket, head);
  });
  return server;
}
