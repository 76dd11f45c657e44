/**
 * A gateway on a real HTTP port with stand-in Lambdas, to test the API Gateway mechanics (limits, status
 * codes, event shapes) apart from the real handlers. The stand-ins record every event they get.
 */
import { type AddressInfo, connect } from 'node:net';
import type { WsAuthorizerEvent, WsRouteEvent, WsRouteResult } from '@viba-realtime/lambdas/handlers/events';
import {
  createDevIssuer,
  createEmulatorLogger,
  createLocalHttpServer,
  type GatewayLimits,
  WebSocketGateway,
} from '@viba-realtime/local';
import WebSocket from 'ws';

export interface StubGateway {
  url: string;
  httpUrl: string;
  connectionsEndpoint: string;
  gateway: WebSocketGateway;
  authorizerEvents: WsAuthorizerEvent[];
  routeEvents: WsRouteEvent[];
  /** Resolves with the next `$disconnect` event the routes stand-in receives. */
  nextDisconnect(): Promise<WsRouteEvent>;
  close(): Promise<void>;
}

/**
 * The token decides the authorizer's answer: none -> throws Unauthorized (401); `deny` -> Deny (403);
 * `boom` -> throws another error (500); anything else -> Allow as that user. `?refuse=NNN` makes `$connect`
 * answer NNN. Messages are echoed as `{ route, body }`; a body of `"throw"` makes the route throw, and
 * `"big:N"` makes it answer a body of exactly N bytes.
 */
export async function startStubGateway(limits: Partial<GatewayLimits> = {}): Promise<StubGateway> {
  const authorizerEvents: WsAuthorizerEvent[] = [];
  const routeEvents: WsRouteEvent[] = [];
  const disconnectWaiters: ((event: WsRouteEvent) => void)[] = [];
  const gateway = new WebSocketGateway({
    limits,
    logger: createEmulatorLogger({ level: 'silent' }),
    async authorizer(event) {
      authorizerEvents.push(event);
      const token = event.queryStringParameters?.token;
      if (!token) throw new Error('Unauthorized');
      if (token === 'boom') throw new Error('boom');
      const effect = token === 'deny' ? 'Deny' : 'Allow';
      return {
        principalId: token,
        policyDocument: {
          Version: '2012-10-17',
          Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: event.methodArn }],
        },
        context: { sub: token, username: token, groups: '', exp: 4102444800, tokenUse: 'id' },
      };
    },
    async routes(event): Promise<WsRouteResult> {
      routeEvents.push(event);
      const { routeKey } = event.requestContext;
      if (routeKey === '$connect') {
        const refuse = event.queryStringParameters?.refuse;
        return { statusCode: refuse ? Number(refuse) : 200 };
      }
      if (routeKey === '$disconnect') {
        disconnectWaiters.shift()?.(event);
        return { statusCode: 200 };
      }
      if (event.body === '"throw"') throw new Error('route failed on purpose');
      const big = /^"big:(\d+)"$/.exec(event.body ?? '');
      if (big) return { statusCode: 200, body: 'x'.repeat(Number(big[1])) };
      return { statusCode: 200, body: JSON.stringify({ route: routeKey, body: event.body }) };
    },
  });
  const issuer = createDevIssuer({ region: 'us-east-1', userPoolId: 'us-east-1_Stub', clientId: 'stub' });
  const server = createLocalHttpServer({ gateway, issuer, logger: createEmulatorLogger({ level: 'silent' }) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const httpUrl = `http://127.0.0.1:${port}`;
  return {
    url: `ws://127.0.0.1:${port}/local`,
    httpUrl,
    connectionsEndpoint: `${httpUrl}/local`,
    gateway,
    authorizerEvents,
    routeEvents,
    nextDisconnect: () => new Promise((resolve) => disconnectWaiters.push(resolve)),
    async close() {
      await gateway.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Opens a WebSocket and resolves once it is open; rejects with the HTTP status when refused. */
export function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(new RefusedError(res.statusCode ?? 0));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** An upgrade answered with an HTTP status instead of 101. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
  constructor(readonly status: number) {
    super(`refused with HTTP ${status}`);
  }
}

/** The HTTP status a refused upgrade got. */
export async function refusalStatus(url: string): Promise<number> {
  try {
    const ws = await openSocket(url);
    ws.close();
    throw new Error(`expected ${url} to be refused, but it opened`);
  } catch (error) {
    if (error instanceof RefusedError) return error.status;
    throw error;
  }
}

/** The next text frame received, parsed as JSON. */
export function nextMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)))));
}

/** Resolves with the close code and reason the client sees. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('already closed'));
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
}

/** The headers of a valid WebSocket upgrade request, for hand-written requests. */
export const UPGRADE_HEADERS =
  'Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

/**
 * Sends `request` byte for byte on a raw TCP connection and resolves, once the server has closed the
 * connection (or answered 101, which this client then drops), with the HTTP status it answered (`undefined` if it answered none) and everything it sent.
 * For requests `ws` and `fetch` refuse to send.
 */
export function rawRequest(httpUrl: string, request: string): Promise<{ status: number | undefined; raw: string }> {
  const { hostname, port } = new URL(httpUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // An accepted upgrade stays open: leave it (without a close frame) once the 101 is in.
      if (Buffer.concat(chunks).toString('latin1').startsWith('HTTP/1.1 101 ')) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), raw });
    });
  });
}
