/**
 * The IoT rule Lambda of the MQTT channel's client-to-server topics (event: {@link IotIngressEvent}):
 * - `rt/users/{sub}/requests`: any client frame of docs/PROTOCOL.md (join, leave, send, history, ping);
 * - `rt/rooms/{room}/send`: `{ "id", "body" }`, a `send` to that room.
 * It runs the same validation and core calls as `ws-routes`, as the connection `mqtt:{clientId}`, and
 * publishes the answer (ack, history page, pong or error) to `rt/users/{sub}/responses`. Bad input is
 * answered with an error frame, never thrown: IoT would retry a failed invocation, repeating the refusal.
 *
 * MQTT 5 request/response: a PUBLISH may name a response topic and carry correlation data. The answer then
 * carries the same correlation data, so a client can match answers without an `id` in the frame. The response
 * topic must be the user's own `rt/users/{sub}/responses` (the only answer topic their IoT policy lets them
 * receive); any other is refused with `bad_request` before the request runs, as the server would otherwise
 * publish to a topic the user chose.
 *
 * No token-expiry check: an MQTT connection is closed by IoT at the custom authorizer's
 * `disconnectAfterInSeconds`, which never reaches past the token's expiry, so a request published on a
 * live connection always comes with a valid token.
 */
import {
  ForbiddenError,
  frameRefOf,
  isJsonObject,
  parseTopic,
  type RealtimeError,
  type ServerFrame,
  TOPIC_SUB_PATTERN,
  topics,
  ValidationError,
} from '@viba-realtime/protocol';
import type { Context } from 'aws-lambda';
import { mqttConnectionId, subOfClientId } from '../core/connections.js';
import type { Caller, CoreDeps } from '../core/deps.js';
import type { Clock } from '../core/ports.js';
import type { HandlerEnv, IotIngressEvent } from './events.js';
import { createIotRuntime } from './iot-runtime.js';
import { answer, errorFrame, type ParsedRequest, parseRequest } from './requests.js';

/** A room send topic's payload as a `send` frame for that room; other payloads as they are. */
function roomSendRequest(room: string, text: string): ParsedRequest {
  const parsed = parseRequest(text);
  if (!parsed.isJson || !isJsonObject(parsed.value)) return parsed;
  // Only `id` and `body` come from the payload: the room is the topic's, the action is implied.
  const value = { action: 'send', room, id: parsed.value.id, body: parsed.value.body };
  // The ref straight from the value: re-serializing it would throw on a body nested too deep for JSON.stringify.
  return { value, isJson: true, ref: frameRefOf(value) };
}

/**
 * Builds the ingress handler from an environment (see `ENV`; it needs `VIBA_IOT_ENDPOINT` and
 * `VIBA_CONNECTIONS_ENDPOINT`). The emulator may inject a clock, nothing else.
 * The handler resolves to the answer it published (IoT ignores it; tests read it), or undefined when the
 * event names no user that could be answered.
 */
export function createIotIngressHandler(env: HandlerEnv, deps: { clock?: Clock } = {}) {
  const runtime = createIotRuntime(env, 'iot-ingress', deps);
  const { store, delivery, iot, queue, clock, log } = runtime;

  return async (event: IotIngressEvent, _context?: Context): Promise<ServerFrame | undefined> => {
    const clientId = typeof event?.clientId === 'string' ? event.clientId : '';
    const sub = subOfClientId(clientId);
    const requestLog = log.child({ clientId, topic: event?.topic });
    if (!TOPIC_SUB_PATTERN.test(sub)) {
      // No user to answer (a data-plane publish has no client id): nothing safe to do but log it.
      requestLog.warn('ingress event without a user client id: dropped');
      return undefined;
    }
    const topic = typeof event.topic === 'string' ? parseTopic(event.topic) : undefined;
    const text = Buffer.from(typeof event.payload === 'string' ? event.payload : '', 'base64').toString('utf8');
    const replyTo = topics.responses(sub);
    const reply = typeof event.correlationData === 'string' ? { correlationData: event.correlationData } : {};
    const refuse = async (error: RealtimeError, ref: ParsedRequest['ref'], why: string, fields = {}) => {
      const refused = errorFrame(error, ref);
      await iot.publish(replyTo, refused, reply);
      requestLog.warn(why, fields);
      return refused;
    };
    let request: ParsedRequest;
    if (topic?.kind === 'requests') {
      request = parseRequest(text);
      // The IoT policy already lets a user publish only to their own requests topic; checked anyway, as the
      // answer goes to the client id's user and the caller must be that user.
      if (topic.sub !== sub) {
        const error = new ForbiddenError('You may publish requests only as yourself.');
        return refuse(error, request.ref, "request on another user's topic refused", { topicSub: topic.sub });
      }
    } else if (topic?.kind === 'roomSend') {
      request = roomSendRequest(topic.room, text);
    } else {
      requestLog.warn('ingress event on a topic no rule should route here: dropped');
      return undefined;
    }

    if (event.responseTopic !== undefined && event.responseTopic !== replyTo) {
      const error = new ValidationError(
        'bad_request',
        `The MQTT 5 response topic must be ${replyTo} (the only answer topic your policy receives), or none.`,
      );
      return refuse(error, request.ref, 'request with a foreign response topic refused', {
        responseTopic: event.responseTopic,
      });
    }

    const connectionId = mqttConnectionId(clientId);
    // The record may not be written yet (the lifecycle rule runs concurrently with the first requests).
    const record = await store.getConnection(connectionId);
    const caller: Caller = {
      connectionId,
      sub,
      username: record?.username ?? sub,
      groups: record?.groups ?? [],
      tokenExp: record?.tokenExp ?? Number.POSITIVE_INFINITY,
      connectedAt: record?.connectedAt ?? clock(),
    };
    const core: CoreDeps = { store, delivery, clock, log: requestLog, topics: iot, ...(queue ? { queue } : {}) };
    const frame = await answer(core, caller, request, requestLog);
    const outcome = await iot.publish(replyTo, frame, reply);
    if (outcome !== 'delivered') requestLog.warn('answer not published', { type: frame.type });
    return frame;
  };
}

let cached: ReturnType<typeof createIotIngressHandler> | undefined;

/** The Lambda entry point. Configuration is read once per execution environment, on first use. */
export const handler = (event: IotIngressEvent, context?: Context): Promise<ServerFrame | undefined> => {
  cached ??= createIotIngressHandler(process.env);
  return cached(event, context);
};
