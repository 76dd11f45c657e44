/**
 * Builders of the events API Gateway hands to the WebSocket Lambdas, field for field: the REQUEST
 * authorizer event on `$connect`, and the route events of `$connect`, messages and `$disconnect`. The shapes
 * are the ones written down in lambdas/src/handlers/events.ts; the values follow what API Gateway sends
 * (CLF `requestTime`, base64-looking ids ending in `=`, `methodArn` of the `$connect` route, ...).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type {
  WsAuthorizerEvent,
  WsAuthorizerFields,
  WsIdentity,
  WsRouteEvent,
} from '@viba-realtime/lambdas/handlers/events';
import type { Context } from 'aws-lambda';
import { formatRequestTime } from '../time.js';

/** The account id the emulator pretends to run in (AWS's documentation placeholder style). */
export const LOCAL_ACCOUNT_ID = '000000000000';

/** Where the API lives: what API Gateway knows about itself when it builds an event. */
export interface ApiDescription {
  apiId: string;
  stage: string;
  region: string;
  accountId: string;
}

/** What API Gateway remembers about a connection from its upgrade request. */
export interface ConnectionDescription {
  connectionId: string;
  /** Epoch ms. */
  connectedAt: number;
  /** The `Host` the client connected to; API Gateway's own domain name in AWS. */
  domainName: string;
  identity: WsIdentity;
  /** Headers of the upgrade request with their original case, plus API Gateway's `X-Forwarded-*`. */
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  queryStringParameters: Record<string, string>;
  multiValueQueryStringParameters: Record<string, string[]>;
}

/**
 * An id shaped like API Gateway's connection, request and message ids: 16 base64 characters, the last
 * one `=` (e.g. `L0SM9cOFvHcCIhw=`). It may contain `+` and `/`, which is why `@connections` callers must
 * URL-encode it, as the AWS SDK does.
 */
export function newGatewayId(): string {
  return randomBytes(11).toString('base64');
}

/** `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`, the resource an authorizer's policy must allow. */
export function connectMethodArn(api: ApiDescription): string {
  return `arn:aws:execute-api:${api.region}:${api.accountId}:${api.apiId}/${api.stage}/$connect`;
}

function baseRequestContext(api: ApiDescription, connection: ConnectionDescription, now: number) {
  const requestId = newGatewayId();
  return {
    extendedRequestId: requestId,
    requestTime: formatRequestTime(now),
    messageDirection: 'IN' as const,
    stage: api.stage,
    connectedAt: connection.connectedAt,
    requestTimeEpoch: now,
    identity: { ...connection.identity },
    requestId,
    domainName: connection.domainName,
    connectionId: connection.connectionId,
    apiId: api.apiId,
  };
}

function nonEmpty<T>(record: Record<string, T>): Record<string, T> | undefined {
  return Object.keys(record).length > 0 ? { ...record } : undefined;
}

/** The REQUEST authorizer event of `$connect`. */
export function buildAuthorizerEvent(
  api: ApiDescription,
  connection: ConnectionDescription,
  now: number,
): WsAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: connectMethodArn(api),
    headers: { ...connection.headers },
    multiValueHeaders: { ...connection.multiValueHeaders },
    queryStringParameters: { ...connection.queryStringParameters },
    multiValueQueryStringParameters: { ...connection.multiValueQueryStringParameters },
    stageVariables: {},
    requestContext: { routeKey: '$connect', eventType: 'CONNECT', ...baseRequestContext(api, connection, now) },
  };
}

/** The `$connect` route event: the upgrade request plus the authorizer's answer. */
export function buildConnectEvent(
  api: ApiDescription,
  connection: ConnectionDescription,
  authorizer: WsAuthorizerFields,
  now: number,
): WsRouteEvent {
  const event: WsRouteEvent = {
    headers: { ...connection.headers },
    multiValueHeaders: { ...connection.multiValueHeaders },
    // API Gateway sends no messageId on $connect, though the shared type marks it required.
    requestContext: {
      routeKey: '$connect',
      eventType: 'CONNECT',
      ...baseRequestContext(api, connection, now),
      authorizer: { ...authorizer },
    } as WsRouteEvent['requestContext'],
    isBase64Encoded: false,
  };
  const query = nonEmpty(connection.queryStringParameters);
  if (query) {
    event.queryStringParameters = query;
    event.multiValueQueryStringParameters = { ...connection.multiValueQueryStringParameters };
  }
  return event;
}

/** A MESSAGE event of a custom route or `$default`. */
export function buildMessageEvent(
  api: ApiDescription,
  connection: ConnectionDescription,
  authorizer: WsAuthorizerFields,
  message: { routeKey: string; body: string; isBase64Encoded: boolean },
  now: number,
): WsRouteEvent {
  return {
    requestContext: {
      routeKey: message.routeKey,
      messageId: newGatewayId(),
      eventType: 'MESSAGE',
      ...baseRequestContext(api, connection, now),
      authorizer: { ...authorizer },
    },
    body: message.body,
    isBase64Encoded: message.isBase64Encoded,
  };
}

/** The `$disconnect` event. Its headers are the fixed set API Gateway sends, not the client's. */
export function buildDisconnectEvent(
  api: ApiDescription,
  connection: ConnectionDescription,
  authorizer: WsAuthorizerFields,
  close: { statusCode: number; reason: string },
  now: number,
): WsRouteEvent {
  const headers = { Host: connection.domainName, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' };
  const event: WsRouteEvent = {
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    // No messageId on $disconnect either.
    requestContext: {
      routeKey: '$disconnect',
      disconnectStatusCode: close.statusCode,
      eventType: 'DISCONNECT',
      ...baseRequestContext(api, connection, now),
      disconnectReason: close.reason,
      authorizer: { ...authorizer },
    } as WsRouteEvent['requestContext'],
    isBase64Encoded: false,
  };
  return event;
}

/** A Lambda invocation context like the one Lambda passes, for handlers that log `awsRequestId`. */
export function buildLambdaContext(functionName: string, api: ApiDescription, timeoutMs = 29_000): Context {
  const started = Date.now();
  const awsRequestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${api.region}:${api.accountId}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${awsRequestId.replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
