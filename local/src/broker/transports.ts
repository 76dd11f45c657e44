/**
 * The broker's transports: plain TCP, and MQTT over WebSocket on `/mqtt` (binary frames, subprotocol
 * `mqtt`) through `ws` in `noServer` mode, so the emulator's one HTTP port can serve it next to the API
 * Gateway emulation. Both only turn a connection into a byte stream plus {@link ConnectionMeta}.
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { BrokerListener, ConnectionMeta } from './types.js';

/** Where to listen. */
export interface ListenOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
}

/** The path MQTT over WebSocket is served on (IoT's is `/mqtt` too). */
export const MQTT_WS_PATH = '/mqtt';

type HandleStream = (stream: Duplex, meta: ConnectionMeta) => Promise<void>;
type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** Accepts TCP connections and hands each socket to the broker. */
export async function listenTcp(handleStream: HandleStream, options: ListenOptions = {}): Promise<BrokerListener> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    // MQTT packets are small and latency-bound: Nagle's algorithm would hold them back behind delayed ACKs
    // (../shared/DEPENDENCY-NOTES.md "Sockets").
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void handleStream(socket, {
      transport: 'tcp',
      ...(socket.remoteAddress !== undefined ? { remoteAddress: socket.remoteAddress } : {}),
      ...(socket.remotePort !== undefined ? { remotePort: socket.remotePort } : {}),
    });
  });
  return listen(server, options, () => {
    for (const socket of sockets) socket.destroy();
  });
}

/** An HTTP server that serves MQTT over WebSocket on `/mqtt` and answers 404 to everything else. */
export async function listenWs(upgrade: UpgradeHandler, options: ListenOptions = {}): Promise<BrokerListener> {
  const sockets = new Set<Duplex>();
  const server = createHttpServer((_req, res) => {
    res.writeHead(404).end();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (!upgrade(req, socket, head)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
  });
  return listen(server, options, () => {
    for (const socket of sockets) socket.destroy();
  });
}

async function listen(
  server: ReturnType<typeof createNetServer> | ReturnType<typeof createHttpServer>,
  options: ListenOptions,
  dropConnections: () => void,
): Promise<BrokerListener> {
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        dropConnections();
      });
      return closing;
    },
  };
}

/** Options of {@link createWsUpgradeHandler}. */
export interface WsUpgradeOptions {
  /** Largest WebSocket message `ws` buffers; larger closes with 1009 before MQTT sees it. */
  maxMessageBytes: number;
  handleStream: HandleStream;
  onError(error: unknown): void;
}

/**
 * The `upgrade` handler for `/mqtt`: picks the `mqtt` subprotocol when offered (MQTT.js and AWS's SDKs
 * offer it), wraps the socket in a stream, and passes the upgrade request's headers and query along for
 * the custom authorizer (browsers can send a token only in the query string).
 */
export function createWsUpgradeHandler(options: WsUpgradeOptions): UpgradeHandler {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes,
    // Compression is off: IoT does not negotiate it, and it would hide the packet sizes the limits apply to.
    perMessageDeflate: false,
    handleProtocols: (protocols) => {
      if (protocols.has('mqtt')) return 'mqtt';
      if (protocols.has('mqttv3.1')) return 'mqttv3.1';
      return false;
    },
  });
  return (req, socket, head) => {
    const url = parseUrl(req.url);
    if (!url || url.pathname !== MQTT_WS_PATH) return false;
    // A client that resets mid-handshake must not crash the process.
    socket.on('error', () => {});
    try {
      wss.handleUpgrade(req, socket, head, (ws) => {
        // MQTT over WebSocket is binary frames only (MQTT 3.1.1 §6, MQTT 5 §6): a text frame ends the
        // connection. This listener is registered before the stream's, so the data never reaches MQTT.
        let stream: Duplex | undefined;
        ws.on('message', (_data, isBinary) => {
          if (!isBinary) {
            stream?.destroy();
            ws.close(1003, 'MQTT needs binary frames');
          }
        });
        stream = createWebSocketStream(ws);
        void options.handleStream(stream, wsMeta(req, url));
      });
    } catch (error) {
      options.onError(error);
      socket.destroy();
    }
    return true;
  };
}

function parseUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * Metadata of a WebSocket connection. Maps are built with `Object.fromEntries`, which defines own
 * properties, so a header or parameter named `__proto__` is an ordinary key, not a prototype write.
 */
function wsMeta(req: IncomingMessage, url: URL): ConnectionMeta {
  const headers = new Map<string, string>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] as string).toLowerCase();
    const value = req.rawHeaders[i + 1] as string;
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous},${value}`);
  }
  const query = new Map<string, string>();
  for (const [name, value] of url.searchParams) query.set(name, value);
  const socket = req.socket;
  return {
    transport: 'ws',
    ...(socket.remoteAddress !== undefined ? { remoteAddress: socket.remoteAddress } : {}),
    ...(socket.remotePort !== undefined ? { remotePort: socket.remotePort } : {}),
    headers: Object.fromEntries(headers),
    query: Object.fromEntries(query),
    queryString: url.search.startsWith('?') ? url.search.slice(1) : url.search,
  };
}
