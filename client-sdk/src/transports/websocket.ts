/**
 * The API Gateway WebSocket transport. The token travels in the `token` query parameter, the one way a
 * browser can send it on a WebSocket upgrade.
 */
import { APIGW_LIMITS, type ServerFrame, TOKEN_QUERY_PARAM } from '@viba-realtime/protocol';
import { AuthenticationError, ConnectionError } from '../errors.js';
import type { WebSocketConstructor, WebSocketLike } from '../types.js';
import type { Transport, TransportConnection, TransportHandlers } from './transport.js';

/** Options of {@link websocketTransport}. */
export interface WebSocketTransportOptions {
  /** `wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or the emulator's `ws://127.0.0.1:4000/local`. */
  url: string;
  /** @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
}

const OPEN = 1;

/**
 * `ws` on Node reports the upgrade's HTTP status in its error ("Unexpected server response: 403"); browsers
 * report nothing, so there a refused token looks like any failed connect and is retried with backoff.
 */
function refusedStatus(event: unknown): number | undefined {
  const text =
    typeof event === 'object' && event !== null
      ? String(
          (event as { message?: unknown }).message ?? (event as { error?: { message?: unknown } }).error?.message ?? '',
        )
      : '';
  const match = /Unexpected server response: (\d{3})/.exec(text);
  return match ? Number(match[1]) : undefined;
}

function withToken(url: string, token: string): string {
  const separator = url.includes('?') ? '&' : '?';
  return `${url}${separator}${TOKEN_QUERY_PARAM}=${encodeURIComponent(token)}`;
}

/** A {@link Transport} over API Gateway WebSocket (or the emulator's). */
export function websocketTransport(options: WebSocketTransportOptions): Transport {
  const WebSocketImpl =
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
  return {
    name: 'websocket',
    needsHeartbeat: true,
    maxConnectionMs: APIGW_LIMITS.maxConnectionMs,
    connect(token: string, handlers: TransportHandlers, signal: AbortSignal): Promise<TransportConnection> {
      if (WebSocketImpl === undefined) {
        return Promise.reject(
          new ConnectionError(
            'No WebSocket implementation: this platform has no global WebSocket (Node 20). Pass `WebSocket` (e.g. from the `ws` package).',
          ),
        );
      }
      return new Promise<TransportConnection>((resolve, reject) => {
        let socket: WebSocketLike;
        try {
          socket = new WebSocketImpl(withToken(options.url, token)) as WebSocketLike;
        } catch (error) {
          reject(new ConnectionError(`Cannot open a WebSocket to ${options.url}.`, { cause: error }));
          return;
        }
        let opened = false;
        let closedReported = false;
        let refusal: number | undefined;
        const onAbort = () => {
          socket.close();
          if (!opened) reject(new ConnectionError('Connect aborted.'));
        };
        signal.addEventListener('abort', onAbort, { once: true });

        const connection: TransportConnection = {
          send(frame) {
            if (socket.readyState !== OPEN) throw new ConnectionError('The WebSocket is not open.');
            socket.send(JSON.stringify(frame));
          },
          close() {
            socket.close(1000, 'client closed');
          },
        };

        socket.onopen = () => {
          opened = true;
          signal.removeEventListener('abort', onAbort);
          resolve(connection);
        };
        socket.onerror = (event) => {
          refusal ??= refusedStatus(event);
        };
        socket.onmessage = (event) => {
          if (typeof event.data !== 'string') {
            handlers.error(new ConnectionError('Ignored a binary frame: the protocol is JSON text.'));
            return;
          }
          let frame: unknown;
          try {
            frame = JSON.parse(event.data);
          } catch (error) {
            handlers.error(new ConnectionError('Ignored a frame that is not JSON.', { cause: error }));
            return;
          }
          if (typeof frame !== 'object' || frame === null || typeof (frame as { type?: unknown }).type !== 'string') {
            handlers.error(new ConnectionError('Ignored a frame without a `type`.', { details: { frame } }));
            return;
          }
          handlers.frame(frame as ServerFrame);
        };
        socket.onclose = (event) => {
          signal.removeEventListener('abort', onAbort);
          if (!opened) {
            reject(
              refusal === 401 || refusal === 403
                ? new AuthenticationError(`The service refused the token (HTTP ${refusal}).`, { status: refusal })
                : new ConnectionError(
                    refusal === undefined
                      ? `Cannot connect to ${options.url} (close ${event.code}).`
                      : `Cannot connect to ${options.url} (HTTP ${refusal}).`,
                    { details: { code: event.code, status: refusal } },
                  ),
            );
            return;
          }
          if (closedReported) return;
          closedReported = true;
          handlers.closed({ code: event.code, reason: event.reason || `closed (${event.code})` });
        };
      });
    },
  };
}
