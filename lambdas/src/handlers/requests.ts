/**
 * What every channel's request handler shares: dispatching a validated client frame to the core, and mapping
 * any failure to the error frame the caller receives. `ws-routes` (WebSocket) and `iot-ingress` (MQTT) both
 * answer through here, so a request means the same on either channel.
 */
import {
  type ClientFrame,
  type ErrorFrame,
  frameRefOf,
  RealtimeError,
  type ServerFrame,
  ValidationError,
  validateClientFrame,
} from '@viba-realtime/protocol';
import { announceAction, listAnnouncements } from '../core/announcements.js';
import type { Caller, CoreDeps } from '../core/deps.js';
import { inbox, markAllRead, markRead } from '../core/notifications.js';
import { history, join, leave } from '../core/rooms.js';
import { send } from '../core/send.js';
import type { Logger } from '../log.js';

/** The fields of a request frame an error frame echoes, so the client can match it. */
export type FrameRef = ReturnType<typeof frameRefOf>;

/** The error frame for a refused request. */
export function errorFrame(error: RealtimeError, ref: FrameRef): ErrorFrame {
  return {
    type: 'error',
    code: error.code,
    message: error.message,
    ...ref,
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

/** Runs one validated client frame through the core. */
export async function dispatch(deps: CoreDeps, caller: Caller, frame: ClientFrame): Promise<ServerFrame> {
  switch (frame.action) {
    case 'join':
      return join(deps, caller, frame);
    case 'leave':
      return leave(deps, caller, frame);
    case 'send':
      return send(deps, caller, frame);
    case 'history':
      return history(deps, caller, frame);
    case 'ping':
      return { type: 'pong', ...(frame.id === undefined ? {} : { ref: frame.id }), ts: deps.clock() };
    case 'inbox':
      return inbox(deps, caller, frame);
    case 'markRead':
      return markRead(deps, caller, frame);
    case 'markAllRead':
      return markAllRead(deps, caller, frame);
    case 'announcements':
      return listAnnouncements(deps, caller, frame);
    case 'announce':
      return announceAction(deps, caller, frame);
  }
}

/** A request's raw text parsed once: the value, whether it was JSON, and the fields an error echoes. */
export interface ParsedRequest {
  value: unknown;
  isJson: boolean;
  ref: FrameRef;
}

/** Parses a request's text; never throws (non-JSON is answered with `bad_request` by {@link answer}). */
export function parseRequest(raw: string): ParsedRequest {
  try {
    const value: unknown = JSON.parse(raw);
    return { value, isJson: true, ref: frameRefOf(value) };
  } catch {
    return { value: undefined, isJson: false, ref: frameRefOf(undefined) };
  }
}

/**
 * Validates and dispatches a request, or maps its failure to an error frame: the answer the caller gets,
 * never a throw. Refusals are logged at info (validation failures not at all: a client's typo is no event),
 * unexpected errors at error level and answered `internal` without their details.
 */
export async function answer(
  deps: CoreDeps,
  caller: Caller,
  request: ParsedRequest,
  log: Logger,
): Promise<ServerFrame> {
  try {
    if (!request.isJson) throw new ValidationError('bad_request', 'The frame is not valid JSON.');
    if (typeof request.value === 'object' && request.value !== null && Object.hasOwn(request.value, 'from')) {
      // Harmless (the sender is always the token's user) but worth a trace: a client trying to pass as another.
      log.warn('ignored a `from` field sent by a client', { sub: caller.sub, ...request.ref });
    }
    return await dispatch(deps, caller, validateClientFrame(request.value));
  } catch (error) {
    return refusal(error, request.ref, log);
  }
}

/** Maps a request's failure to its error frame, logging as {@link answer} describes. */
export function refusal(error: unknown, ref: FrameRef, log: Logger): ErrorFrame {
  if (error instanceof RealtimeError) {
    if (!(error instanceof ValidationError)) log.info('request refused', { code: error.code, ...ref });
    return errorFrame(error, ref);
  }
  log.error('request failed', { error, ...ref });
  return errorFrame(new RealtimeError('internal'), ref);
}
