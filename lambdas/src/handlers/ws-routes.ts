/**
 * Every route of the WebSocket API in one Lambda (see `WS_ROUTES`): `$connect`, `$disconnect`,
 * `$default` and the client actions. It turns API Gateway's event into a core call and the result into
 * API Gateway's answer: for two-way routes the answer's `body` is the frame the caller receives.
 */

import { parseGroups, RealtimeError, type ServerFrame, TokenExpiredError } from '@viba-realtime/protocol';
import type { Context } from 'aws-lambda';
import { loadConfig } from '../config.js';
import { connect, disconnect } from '../core/connections.js';
import type { Caller, CoreDeps } from '../core/deps.js';
import { type Clock, type Delivery, systemClock } from '../core/ports.js';
import { ConnectionsDelivery } from '../delivery/connections-delivery.js';
import { IotDelivery } from '../delivery/iot-delivery.js';
import { RoutingDelivery } from '../delivery/routing-delivery.js';
import { createLogger, type Logger } from '../log.js';
import { createStoreFromConfig } from '../store/dynamodb.js';
import type { HandlerEnv, WsRouteEvent, WsRouteResult } from './events.js';
import { queueFromConfig } from './iot-runtime.js';
import { answer, errorFrame, parseRequest, refusal } from './requests.js';

function callerOf(event: WsRouteEvent): Caller | undefined {
  const auth = event.requestContext.authorizer;
  if (!auth || typeof auth.sub !== 'string') return undefined;
  return {
    connectionId: event.requestContext.connectionId,
    sub: auth.sub,
    username: typeof auth.username === 'string' ? auth.username : auth.sub,
    groups: parseGroups(typeof auth.groups === 'string' ? auth.groups : undefined),
    tokenExp: Number(auth.exp),
    connectedAt: event.requestContext.connectedAt,
  };
}

function reply(frame: ServerFrame): WsRouteResult {
  return { statusCode: 200, body: JSON.stringify(frame) };
}

/** Builds the routes handler from an environment (see `ENV` in the protocol). Tests and the emulator may
 * inject a clock; nothing else is injectable, so the emulator runs exactly what AWS runs. */
export function createWsRoutesHandler(env: HandlerEnv, deps: { clock?: Clock } = {}) {
  const config = loadConfig(env, { table: true, auth: false });
  const clock = deps.clock ?? systemClock;
  const log = createLogger(config.logLevel).child({ handler: 'ws-routes' });
  const store = createStoreFromConfig(config, clock);
  // MQTT members of a room get their frames through IoT Core (one client for every request).
  const iot = config.iotEndpoint
    ? new IotDelivery({ endpoint: config.iotEndpoint, region: config.region, credentials: config.credentials, log })
    : undefined;
  const queue = queueFromConfig(config, log);
  // One delivery client per @connections endpoint; in AWS the endpoint comes from the event.
  const deliveries = new Map<string, Delivery>();
  const deliveryFor = (event: WsRouteEvent): Delivery => {
    const { domainName, stage } = event.requestContext;
    const endpoint = config.connectionsEndpoint ?? `https://${domainName}/${stage}`;
    let delivery = deliveries.get(endpoint);
    if (!delivery) {
      const websocket = new ConnectionsDelivery({
        endpoint,
        region: config.region,
        credentials: config.credentials,
        log,
      });
      delivery = new RoutingDelivery({ websocket, mqtt: iot, log });
      deliveries.set(endpoint, delivery);
    }
    return delivery;
  };

  return async (event: WsRouteEvent, _context?: Context): Promise<WsRouteResult> => {
    const { routeKey, connectionId } = event.requestContext;
    const caller = callerOf(event);
    // The user in every line, so a refusal in the logs names who was refused.
    const requestLog: Logger = log.child({
      routeKey,
      connectionId,
      requestId: event.requestContext.requestId,
      ...(caller ? { sub: caller.sub } : {}),
    });
    const core: CoreDeps = {
      store,
      delivery: deliveryFor(event),
      clock,
      log: requestLog,
      ...(queue ? { queue } : {}),
      ...(iot ? { topics: iot } : {}),
    };

    if (routeKey === '$connect') {
      // API Gateway only runs $connect after the authorizer allowed it; no caller means a misconfigured
      // stage (no authorizer), which must not let anonymous connections in.
      if (!caller) {
        requestLog.error('$connect without authorizer context: refusing');
        return { statusCode: 403 };
      }
      await connect(core, caller);
      return { statusCode: 200 };
    }
    if (routeKey === '$disconnect') {
      await disconnect(core, connectionId, caller?.sub);
      return { statusCode: 200 };
    }

    const request = parseRequest(event.body ?? '');
    try {
      if (!caller) throw new RealtimeError('internal', 'The connection has no authorizer context.');
      if (caller.tokenExp <= Math.floor(clock() / 1000)) {
        // Tell the client why, then close: a token's lifetime bounds its connection's.
        const expired = errorFrame(new TokenExpiredError(caller.tokenExp), request.ref);
        await core.delivery.post({ connectionId, sub: caller.sub }, expired);
        await core.delivery.close(connectionId);
        requestLog.info('closed connection with expired token', { sub: caller.sub, exp: caller.tokenExp });
        return { statusCode: 200 };
      }
      return reply(await answer(core, caller, request, requestLog));
    } catch (error) {
      return reply(refusal(error, request.ref, requestLog));
    }
  };
}

let cached: ReturnType<typeof createWsRoutesHandler> | undefined;

/** The Lambda entry point. Configuration is read once per execution environment, on first use. */
export const handler = (event: WsRouteEvent, context?: Context): Promise<WsRouteResult> => {
  cached ??= createWsRoutesHandler(process.env);
  return cached(event, context);
};
