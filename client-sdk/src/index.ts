/**
 * @viba-realtime/client — the typed client SDK for browsers, React Native and Node. See docs/CLIENT.md.
 * @example
 * const client = createRealtimeClient({ url, getToken });
 * const room = client.join('lobby');
 * room.on('message', (m) => console.log(m.from, m.body));
 * await room.send({ text: 'hi' });
 */

export type {
  ChatFrame,
  ClientFrame,
  ErrorCode,
  JsonObject,
  RealtimeClientConfig,
  RoomVisibility,
  ServerFrame,
} from '@viba-realtime/protocol';
export { ERROR_CODES, LIMITS, parseClientConfig } from '@viba-realtime/protocol';
export { CLIENT_DEFAULTS, createRealtimeClient } from './client.js';
export * from './errors.js';
export type { Transport, TransportCloseInfo, TransportConnection, TransportHandlers } from './transports/transport.js';
export { type WebSocketTransportOptions, websocketTransport } from './transports/websocket.js';
export type * from './types.js';
