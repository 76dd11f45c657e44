/**
 * The one interface both transports implement. The client (state machine, rooms, resume, inbox) speaks
 * protocol frames to a {@link Transport} and never learns whether they travel over API Gateway WebSocket or
 * IoT Core MQTT.
 */
import { type ClientFrame, IOT_LIMITS, type ServerFrame } from '@viba-realtime/protocol';

/** IoT Core's custom authorizer admits a token only with 300 s left (it cannot disconnect sooner); a little
 * more for clock skew between device and service. */
export const MQTT_MIN_TOKEN_VALIDITY_MS = IOT_LIMITS.minAuthorizerSeconds * 1000 + 15_000;

/** Why a live connection ended. */
export interface TransportCloseInfo {
  /** WebSocket close code or MQTT disconnect reason code, when the transport knows one. */
  code?: number;
  /** Human-readable reason, for logs. */
  reason: string;
  /** The error that ended it, if any. */
  error?: Error;
}

/** What a transport calls back into the client. */
export interface TransportHandlers {
  /** A server frame arrived (already parsed; frames that are not JSON objects are reported to `error`). */
  frame(frame: ServerFrame): void;
  /** The connection is gone (server close, network loss, `close()`); called once, after `connect` resolved. */
  closed(info: TransportCloseInfo): void;
  /** Something worth reporting that does not end the connection (an unparseable frame, say). */
  error(error: Error): void;
}

/** An open connection. */
export interface TransportConnection {
  /** Writes one client frame. Throws {@link ConnectionError} when the connection is no longer open. */
  send(frame: ClientFrame): void;
  /** Closes the connection; `handlers.closed` follows. Safe to call twice. */
  close(): void;
}

/**
 * A way to reach the service. `connect` opens one connection with one token and resolves once frames can
 * be sent; it rejects with `AuthenticationError` when the service refused the token (HTTP 401/403, MQTT
 * CONNACK refusal) and with `ConnectionError` for anything worth retrying.
 */
export interface Transport {
  /** `websocket` or `mqtt`, for logs and `client.transport`. */
  readonly name: string;
  /**
   * Whether the client should send `ping` frames to keep the connection alive (API Gateway closes a
   * WebSocket after 10 minutes idle). MQTT keeps itself alive with PINGREQ, which costs no Lambda call.
   */
  readonly needsHeartbeat: boolean;
  /**
   * Longest a connection lives on the service side (API Gateway: 2 hours), so the client reconnects first;
   * `undefined` when there is no such cut.
   */
  readonly maxConnectionMs: number | undefined;
  /**
   * Shortest validity a token must have left to be accepted (IoT Core's custom authorizer admits only tokens
   * valid for 300 s more); the client asks `getToken({ forceRefresh: true })` for a fresher one below it.
   */
  readonly minTokenValidityMs?: number;
  connect(token: string, handlers: TransportHandlers, signal: AbortSignal): Promise<TransportConnection>;
}
