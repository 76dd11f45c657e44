/**
 * The IoT Core side of the MQTT channel: the Lambda entry points and the topic rules that invoke them. The
 * CDK stack creates exactly these rules (one `AWS::IoT::TopicRule` each, with this SQL) and the emulator's
 * rules engine matches exactly these filters and builds the events this SQL selects; an infra test asserts
 * the synthesized rules equal this table. Design: docs/design/mqtt-channel.md.
 */
import { topics } from './topics.js';

/** The Lambda entry points of the MQTT channel (one file each in lambdas/src/handlers/). */
export const IOT_HANDLERS = {
  /** IoT Core custom authorizer: admits a Cognito token and returns the user's policy. */
  authorizer: 'iot-authorizer',
  /** Rule Lambda of the client-to-server topics (requests and room sends). */
  ingress: 'iot-ingress',
  /** Rule Lambda of the lifecycle events (connected / disconnected). */
  presence: 'iot-presence',
} as const;
export type IotHandlerName = (typeof IOT_HANDLERS)[keyof typeof IOT_HANDLERS];

/** Which rule Lambda a rule invokes (a key of {@link IOT_HANDLERS}). */
export type IotRuleTarget = 'ingress' | 'presence';

/** The IoT SQL version of every rule: the current one, the only one with `get_mqtt_property()`. */
export const IOT_SQL_VERSION = '2016-03-23';

/** IoT's lifecycle topics `$aws/events/presence/{connected|disconnected}/{clientId}`. */
export const LIFECYCLE_PRESENCE_FILTER = '$aws/events/presence/+/+';

/** One IoT topic rule. */
export interface IotRuleDefinition {
  /** Short name, unique in the table; the AWS rule name ends with it, so only `[A-Za-z0-9_]`. */
  readonly name: string;
  /** The MQTT topic filter of the rule's `FROM` (only `+` wildcards). */
  readonly filter: string;
  /** The rule's complete SQL statement ({@link IOT_SQL_VERSION}). */
  readonly sql: string;
  /** The Lambda the rule's one action invokes, with the SQL's result as the event. */
  readonly target: IotRuleTarget;
}

/**
 * The SQL of the ingress rules; its result is the `IotIngressEvent` of lambdas/src/handlers/events.ts. The
 * payload is base64-encoded rather than merged (`SELECT *` merges only JSON payloads, and a frame that is not
 * JSON must still be answered with an error frame); `get_mqtt_property()` yields nothing for a property the
 * PUBLISH lacks (every MQTT 3.1.1 publish), so those two fields are then absent.
 */
function ingressSql(filter: string): string {
  return (
    "SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS clientId, " +
    "get_mqtt_property('response_topic') AS responseTopic, " +
    "get_mqtt_property('correlation_data') AS correlationData " +
    `FROM '${filter}'`
  );
}

const REQUESTS_FILTER = topics.requests('+');
const ROOM_SEND_FILTER = topics.roomSend('+');

/**
 * Every IoT topic rule of the MQTT channel, in a stable order:
 * - `requests`: `rt/users/+/requests` (any client frame) -> `iot-ingress`;
 * - `roomSend`: `rt/rooms/+/send` (a chat body for one room) -> `iot-ingress`;
 * - `presence`: the lifecycle events, selected whole (`IotPresenceEvent`) -> `iot-presence`.
 */
export const IOT_RULES: readonly IotRuleDefinition[] = [
  { name: 'requests', filter: REQUESTS_FILTER, sql: ingressSql(REQUESTS_FILTER), target: 'ingress' },
  { name: 'roomSend', filter: ROOM_SEND_FILTER, sql: ingressSql(ROOM_SEND_FILTER), target: 'ingress' },
  {
    name: 'presence',
    filter: LIFECYCLE_PRESENCE_FILTER,
    sql: `SELECT * FROM '${LIFECYCLE_PRESENCE_FILTER}'`,
    target: 'presence',
  },
];
