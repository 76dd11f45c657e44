/**
 * The AWS event shapes our WebSocket handlers receive, as API Gateway sends them. `@types/aws-lambda` types
 * the REST flavour of the REQUEST authorizer event and omits the `$connect`-only fields of WebSocket route
 * events, so the exact WebSocket shapes are written down here; the emulator builds exactly these.
 */
import type {
  APIGatewayAuthorizerResult,
  APIGatewayEventWebsocketRequestContextV2,
  APIGatewayProxyResultV2,
} from 'aws-lambda';

/** `requestContext.identity` of WebSocket events. */
export interface WsIdentity {
  sourceIp: string;
  userAgent?: string;
}

/** REQUEST authorizer event of a WebSocket API (`$connect` only). */
export interface WsAuthorizerEvent {
  type: 'REQUEST';
  /** `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect` */
  methodArn: string;
  headers: Record<string, string> | undefined;
  multiValueHeaders: Record<string, string[]> | undefined;
  queryStringParameters: Record<string, string> | undefined;
  multiValueQueryStringParameters: Record<string, string[]> | undefined;
  stageVariables: Record<string, string> | undefined;
  requestContext: Omit<APIGatewayEventWebsocketRequestContextV2, 'messageId'> & {
    routeKey: '$connect';
    eventType: 'CONNECT';
    identity: WsIdentity;
  };
}

/** What an authorizer answers. Throwing `Error('Unauthorized')` instead makes API Gateway answer 401;
 * a `Deny` policy makes it answer 403. */
export type WsAuthorizerResult = APIGatewayAuthorizerResult;

/** `requestContext.authorizer` of route events: the authorizer's `context` plus `principalId`. */
export type WsAuthorizerFields = { principalId: string } & Record<string, string | number | boolean | undefined>;

/** A WebSocket route event (`$connect`, `$disconnect`, `$default` and custom routes). */
export interface WsRouteEvent {
  requestContext: APIGatewayEventWebsocketRequestContextV2 & {
    identity: WsIdentity;
    authorizer?: WsAuthorizerFields;
    /** `$disconnect` only. */
    disconnectStatusCode?: number;
    /** `$disconnect` only. */
    disconnectReason?: string;
  };
  /** Custom routes and `$default`: the frame as received. Absent on `$connect`/`$disconnect`. */
  body?: string;
  isBase64Encoded: boolean;
  /** `$connect` (and `$disconnect`) only. */
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  /** `$connect` only. */
  queryStringParameters?: Record<string, string>;
  multiValueQueryStringParameters?: Record<string, string[]>;
  stageVariables?: Record<string, string>;
}

/** What a route handler answers. For two-way routes (see `WS_ROUTES[].returnResponse`) API Gateway sends
 * `body` to the caller as one frame; a `$connect` answer other than 2xx refuses the connection. */
export type WsRouteResult = Exclude<APIGatewayProxyResultV2, string> & { statusCode: number; body?: string };

/** Environment of a handler: the variables named in the protocol's `ENV` plus the AWS ones
 * (`AWS_REGION`, and credentials when run by the emulator). */
export type HandlerEnv = Readonly<Record<string, string | undefined>>;

/**
 * The event the IoT rules on the client-to-server topics send the `iot-ingress` Lambda. Both rules (one per
 * topic filter, same Lambda; the SQL is `IOT_RULES` in the contract) select exactly this:
 *
 * ```sql
 * SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS clientId,
 *   get_mqtt_property('response_topic') AS responseTopic,
 *   get_mqtt_property('correlation_data') AS correlationData
 * FROM 'rt/users/+/requests'   -- and FROM 'rt/rooms/+/send'
 * ```
 *
 * The payload travels base64-encoded rather than merged as JSON (`SELECT *`): a rule can only merge a JSON
 * payload, and a frame that is not JSON must still be answered with a `bad_request` error frame. IoT's
 * "Working with binary payloads" page (binary-payloads.html) documents `encode(*, 'base64')` in a SELECT with
 * other fields, and that a Lambda action takes a non-JSON payload only base64-encoded in a JSON event.
 * `get_mqtt_property` yields nothing for a property the PUBLISH lacks (every MQTT 3.1.1 publish), so the
 * two MQTT 5 fields are absent then; IoT hands correlation data over base64-encoded.
 */
export interface IotIngressEvent {
  /** The topic the client published to (`topic()`). */
  topic: string;
  /** The publishing client's MQTT client id (`clientid()`). */
  clientId: string;
  /** The MQTT payload, base64 (`encode(*, 'base64')`). */
  payload: string;
  /** MQTT 5 only: the PUBLISH's response topic, where the client wants the answer. */
  responseTopic?: string;
  /** MQTT 5 only: the PUBLISH's correlation data, base64; echoed on the answer. */
  correlationData?: string;
}

/**
 * The event the IoT rule on the lifecycle topics sends the `iot-presence` Lambda: IoT's lifecycle event JSON
 * as published (life-cycle-events.html), selected whole:
 *
 * ```sql
 * SELECT * FROM '$aws/events/presence/+/+'
 * ```
 */
export interface IotPresenceEvent {
  clientId: string;
  /** Epoch ms. */
  timestamp: number;
  eventType: 'connected' | 'disconnected';
  sessionIdentifier?: string;
  principalIdentifier?: string;
  ipAddress?: string;
  /** Per client id; grows with each connection; a session's two events share it. */
  versionNumber: number;
  clientInitiatedDisconnect?: boolean;
  disconnectReason?: string;
}
