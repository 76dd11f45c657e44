/**
 * @viba-realtime/client — the typed client SDK. This first version gives raw-WebSocket clients the wire
 * protocol's frame types and validators; the connection state machine, transports, resume and React
 * bindings build on it (see docs/PROTOCOL.md for the frames).
 */
export type {
  AckFrame,
  ChatFrame,
  ClientAction,
  ClientFrame,
  ErrorCode,
  ErrorFrame,
  HistoryFrame,
  HistoryPageFrame,
  JoinFrame,
  JsonObject,
  LeaveFrame,
  PingFrame,
  PongFrame,
  PresenceFrame,
  RoomVisibility,
  SendFrame,
  ServerFrame,
} from '@viba-realtime/protocol';
export { ERROR_CODES, LIMITS, TOKEN_QUERY_PARAM, validateClientFrame } from '@viba-realtime/protocol';
