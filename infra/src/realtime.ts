/**
 * The viba-realtime construct: everything one deployment needs, built from the protocol's contract (route
 * table, table layout, environment names) so that AWS and the emulator cannot drift apart.
 *
 * It holds the WebSocket channel, unless turned off the MQTT channel over IoT Core (custom authorizer, the
 * topic rules of the protocol's `IOT_RULES`, their Lambdas), the fan-out queue that large deliveries
 * (notifications, announcements) are split onto, with its worker and dead-letter queue, the scheduled functions
 * of the protocol's `SCHEDULES` (the token sweeper), and the operations side: alarms, a dashboard and the
 * client config. Further parts are meant to be added as private `create*` steps that reuse
 * {@link Realtime.table} and the shared function settings, not as a second construct.
 */
import { fileURLToPath } from 'node:url';
import {
  CLIENT_CONFIG_VERSION,
  ENV,
  FANOUT_WORKER_HANDLER,
  FUNCTION_TIMEOUTS_MS,
  IOT_HANDLERS,
  IOT_RULES,
  IOT_SQL_VERSION,
  type IotHandlerName,
  type IotRuleTarget,
  LIMITS,
  type RealtimeClientConfig,
  ROUTE_SELECTION_EXPRESSION,
  type RouteDefinition,
  SCHEDULES,
  TABLE,
  TOKEN_SWEEPER_HANDLER,
  topics,
  WS_HANDLERS,
  WS_ROUTES,
  type WsHandlerName,
} from '@viba-realtime/protocol';
import { ArnFormat, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import {
  LogGroupLogDestination,
  type ThrottleSettings,
  WebSocketApi,
  type WebSocketRoute,
  type WebSocketRouteIntegration,
  WebSocketStage,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  Stats,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IUserPool } from 'aws-cdk-lib/aws-cognito';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant, type IGrantable, ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnAuthorizer, CfnTopicRule } from 'aws-cdk-lib/aws-iot';
import {
  ApplicationLogLevel,
  Architecture,
  CfnPermission,
  type IFunction,
  LoggingFormat,
  Runtime,
} from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

/** A token use the authorizer accepts: Cognito ID tokens, access tokens, or both. */
export type TokenUse = 'id' | 'access';

/** Log level of the handlers' own logger (`ENV.logLevel`). */
export type HandlerLogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** Properties of {@link Realtime}. */
export interface RealtimeProps {
  /**
   * The Cognito user pool whose tokens may connect: the pool itself or its id (`region_xxxx`). The pool is
   * only read (its id goes to the authorizer); the construct never changes it.
   */
  readonly userPool: IUserPool | string;

  /**
   * App client ids of that pool whose tokens are accepted. At least one is required: accepting tokens of
   * any client of the pool is never the default.
   */
  readonly userPoolClientIds: string[];

  /**
   * Which token uses the authorizer accepts.
   * @default ['id', 'access']
   */
  readonly tokenUse?: TokenUse[];

  /**
   * Name of the WebSocket API stage; it is the last path segment of the WebSocket URL.
   * @default 'prod'
   */
  readonly stageName?: string;

  /**
   * Removal policy of the stateful resources: the table and the log groups. `RETAIN` (or
   * `RETAIN_ON_UPDATE_OR_DELETE`) keeps the data when the stack is deleted; `DESTROY` is for throwaway stacks.
   * `SNAPSHOT` is refused: neither DynamoDB tables nor log groups support it.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Log level of the handlers' logger.
   * @default 'info'
   */
  readonly logLevel?: HandlerLogLevel;

  /**
   * Retention of the functions' and the access log's log groups.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;

  /**
   * Default throttling of every route of the stage: steady requests per second (a positive number) and burst
   * size (a whole number, at least 1). A setting left out keeps its default, so no route is ever unthrottled by
   * omission. API Gateway's account-level quota still applies on top of it.
   * @default { rateLimit: 1000, burstLimit: 500 }
   */
  readonly throttle?: ThrottleSettings;

  /**
   * Write the stage's access log to CloudWatch Logs.
   *
   * WebSocket APIs (unlike HTTP APIs) can only log once the account's API Gateway settings name a
   * CloudWatch role; without it the stage fails to deploy with "CloudWatch Logs role ARN must be set in
   * account settings to enable logging". See {@link RealtimeProps.createApiGatewayLogRole}.
   * @default true
   */
  readonly accessLogs?: boolean;

  /**
   * Create that account-level API Gateway CloudWatch role and register it (`AWS::ApiGateway::Account`).
   *
   * Off by default because the setting is one per account and region, shared by every REST and WebSocket
   * API in it: a library construct should not change it behind the user's back. Turn it on in an account
   * where it was never set. The role is always retained, so that deleting this stack does not break the
   * logging of other APIs that rely on the setting. It is refused with `accessLogs: false`, where it would
   * change the account-wide setting for nothing.
   * @default false
   */
  readonly createApiGatewayLogRole?: boolean;

  /**
   * Deploy the MQTT channel over AWS IoT Core: the custom authorizer (Cognito tokens as the MQTT password or
   * the `token` query parameter), the topic rules of the protocol's `IOT_RULES` and their Lambdas, and IoT
   * delivery for the MQTT members of rooms. The account's IoT data endpoint is looked up at deploy time.
   *
   * IoT Core is a regional, account-wide service: the authorizer and rules get names unique to this
   * construct, but every rule on `$aws/events/presence/+/+` of the account and region sees the lifecycle
   * events of every client (the presence Lambda ignores client ids that are not ours).
   * @default true
   */
  readonly mqtt?: boolean;

  /**
   * Create a CloudWatch dashboard of the deployment: WebSocket connects, messages and errors; each function's
   * errors, throttles and p99 duration; the fan-out queue's depth and age and the dead-letter queue's depth; the
   * scheduled functions' runs and failed invokes; the state of {@link Realtime.alarms}. One dashboard costs a few
   * dollars a month beyond the free tier's three.
   * @default true
   */
  readonly dashboard?: boolean;

  /**
   * Most fan-out workers running at once (the SQS event source's `maxConcurrency`, 2 to 1000). Each worker
   * keeps up to `LIMITS.deliveryConcurrency` (48) `@connections` posts in flight, and every post counts
   * against API Gateway's account-level throttle (10,000 requests per second by default, shared by every API
   * of the account and region, clients' own messages included): raise it only with that quota.
   * @default {@link DEFAULT_FANOUT_MAX_CONCURRENCY}
   */
  readonly fanoutMaxConcurrency?: number;
}

/** A route of the WebSocket API and the contract entry it was made from. */
export interface RealtimeRoute {
  readonly definition: RouteDefinition;
  readonly route: WebSocketRoute;
}

/** The MQTT channel's resources (see {@link RealtimeProps.mqtt}). */
export interface RealtimeMqtt {
  /** Host name of the account's IoT data endpoint (`iot:Data-ATS`, resolved at deploy time) that MQTT clients
   * connect to: MQTT over TLS on 443 (ALPN `mqtt`) or 8883, or MQTT over WebSocket at `wss://{host}/mqtt`. */
  readonly endpointAddress: string;
  /** `https://` URL of that endpoint: the handlers' `VIBA_IOT_ENDPOINT`, where they publish. */
  readonly dataEndpoint: string;
  /** The custom authorizer. Clients name it in their CONNECT (`x-amz-customauthorizer-name`). */
  readonly authorizer: CfnAuthorizer;
  /** Its name. */
  readonly authorizerName: string;
  /** The custom authorizer's Lambda (reads memberships, nothing else). */
  readonly authorizerFunction: NodejsFunction;
  /** The Lambda of the ingress rules (requests and room sends). */
  readonly ingressFunction: NodejsFunction;
  /** The Lambda of the lifecycle rule. */
  readonly presenceFunction: NodejsFunction;
  /** One topic rule per entry of the protocol's `IOT_RULES`, by the entry's name. */
  readonly rules: Readonly<Record<string, CfnTopicRule>>;
  /** Where IoT writes a rule's failed action (the rules' error action). */
  readonly ruleErrorLogGroup: LogGroup;
  /** The deploy-time lookup of the IoT data endpoint (`iot:DescribeEndpoint`). */
  readonly endpointLookup: AwsCustomResource;
}

/** The fan-out queue's resources: the queue, its worker, its dead-letter queue and their alarms. */
export interface RealtimeFanout {
  /** Where large fan-outs are split into batches (`VIBA_FANOUT_QUEUE_URL`): one message per batch of up to
   * `LIMITS.fanoutBatchSize` connections. */
  readonly queue: Queue;
  /** Where a batch goes after {@link FANOUT_MAX_RECEIVE_COUNT} failed receives; kept 14 days. */
  readonly deadLetterQueue: Queue;
  /** The `fanout-worker` Lambda that drains {@link RealtimeFanout.queue}, one batch per invocation. */
  readonly workerFunction: NodejsFunction;
  /** In alarm while the dead-letter queue holds a message. */
  readonly deadLetterAlarm: Alarm;
  /** In alarm when the worker failed an invocation in the last 5 minutes. */
  readonly workerErrorsAlarm: Alarm;
}

/** A function the protocol's `SCHEDULES` runs periodically. */
export type ScheduledHandlerName = (typeof SCHEDULES)[number]['handler'];

/** A scheduled function and the EventBridge rule that runs it (one per entry of the protocol's `SCHEDULES`). */
export interface RealtimeSchedule {
  /** The contract entry it was made from: the handler and its period in minutes. */
  readonly definition: (typeof SCHEDULES)[number];
  /** The function the rule invokes (asynchronously), without retries of a failed run: the next run follows. */
  readonly function: NodejsFunction;
  /** The `rate(...)` rule. */
  readonly rule: Rule;
}

/** The DynamoDB actions the routes function uses, and nothing else (no scans, no transactions, no DDL). */
export const ROUTES_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:BatchWriteItem',
] as const;

/** The DynamoDB actions of the IoT custom authorizer: it only lists the user's rooms (a GSI query). */
export const IOT_AUTHORIZER_TABLE_ACTIONS = ['dynamodb:Query'] as const;

/**
 * The DynamoDB actions of the lifecycle Lambda: record the connection or its gone mark (conditional put),
 * set its subscriptions' expiry (conditional update), delete its subscriptions (index query + batch delete),
 * announce `left` to rooms (query) and the 410 cleanup of that fan-out (delete). No reads by key.
 */
export const IOT_PRESENCE_TABLE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:BatchWriteItem',
] as const;

/**
 * The DynamoDB actions of the token sweeper on the table, besides `Query` on the index (the expired-token
 * range of each shard, and a gone connection's subscriptions): the cleanup of a connection found gone (410),
 * `deleteConnection` (its record and `all` entry: DeleteItem; its subscriptions and group entries:
 * BatchWriteItem; the `all` entry read when the record is already gone: GetItem). No `Query` on the table:
 * that is `listRoomSubscriptions`, for the `left` presence of the rooms `deleteConnection` returns, and a
 * WebSocket subscription expires with its token (`join` sets its TTL to at most `tokenExp`), so for a token the
 * sweeper found expired those rooms are always empty.
 */
export const TOKEN_SWEEPER_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
] as const;

/**
 * The topics the server publishes to, from the protocol's topic builders with `*` for the user, the room and
 * the group (in IAM, `*` also spans `/`, which the topic layout never puts in a sub, room or group): a
 * member's room topic (fan-out), a user's answer topic (ingress), a user's inbox (notifications) and the
 * announcement topics. None may publish to a client-to-server topic, which would invoke the ingress rule.
 */
export const IOT_PUBLISH_TOPICS = {
  userRooms: topics.userRoom('*', '*'),
  responses: topics.responses('*'),
  inbox: topics.inbox('*'),
  announcements: topics.announcements,
  groupAnnouncements: topics.groupAnnouncements('*'),
} as const;

/** What a function that delivers room frames, notifications and announcements publishes to (not answers). */
export const IOT_DELIVERY_TOPICS = [
  IOT_PUBLISH_TOPICS.userRooms,
  IOT_PUBLISH_TOPICS.inbox,
  IOT_PUBLISH_TOPICS.announcements,
  IOT_PUBLISH_TOPICS.groupAnnouncements,
] as const;

/** The Lambda entry points of the construct's own functions: the one that drains the fan-out queue
 * (lambdas/src/handlers/fanout-worker.ts) and the scheduled one that closes WebSocket connections whose token
 * has expired (lambdas/src/handlers/token-sweeper.ts). */
export { FANOUT_WORKER_HANDLER, TOKEN_SWEEPER_HANDLER };

/**
 * The worker's timeout: half of `LIMITS.fanoutClaimStaleMs`, so a batch is only taken over from a worker that
 * is surely over (the claim is twice as old as any invocation can run), whatever clock skew.
 */
export const FANOUT_WORKER_TIMEOUT = Duration.millis(FUNCTION_TIMEOUTS_MS[FANOUT_WORKER_HANDLER]);

/** Receives of a batch's message before it moves to the dead-letter queue. The worker re-queues a batch's
 * failed deliveries itself (`LIMITS.fanoutMaxAttempts`), so a message fails as a whole only when the worker
 * does (timeout, crash, DynamoDB down). */
export const FANOUT_MAX_RECEIVE_COUNT = 5;

/** API Gateway's default account-level steady rate, requests per second, shared by every API of the account
 * and region; it can be raised on request. The sizing below counts every `@connections` post against it. */
const APIGW_ACCOUNT_RATE_PER_SECOND = 10_000;
/** Duration of one `@connections` post that the sizing of `LIMITS.deliveryConcurrency` assumes, ms. */
const ASSUMED_POST_MS = 20;

/**
 * Default of {@link RealtimeProps.fanoutMaxConcurrency}: as many workers as keep their posts under API
 * Gateway's default account-level rate at the ~20 ms per post that `LIMITS.deliveryConcurrency` assumes. Each
 * worker has up to 48 posts in flight, about 2,400 posts a second, so 4 workers post at most about 9,600 a
 * second; 10 workers (480 posts in flight) would reach about 24,000. The rate is shared with clients'
 * messages and the inline fan-outs; a 429 is retried with backoff (`LIMITS.deliveryMaxAttempts`) and then
 * re-queued, so a burst past it slows deliveries rather than losing them, but meanwhile it throttles every
 * other API of the account too.
 */
export const DEFAULT_FANOUT_MAX_CONCURRENCY = Math.floor(
  (APIGW_ACCOUNT_RATE_PER_SECOND * ASSUMED_POST_MS) / 1000 / LIMITS.deliveryConcurrency,
);

/** The account's IoT data endpoint, as the handlers and clients need it, and the custom resource that reads it. */
interface IotEndpoint {
  address: string;
  url: string;
  lookup: AwsCustomResource;
}

/** The period of every alarm: short enough to page quickly, long enough for Lambda's and SQS's metrics. */
const ALARM_PERIOD = Duration.minutes(5);

interface Settings {
  tokenUse: TokenUse[];
  stageName: string;
  removalPolicy: RemovalPolicy;
  logLevel: HandlerLogLevel;
  logRetention: RetentionDays;
  throttle: ThrottleSettings;
  accessLogs: boolean;
  createApiGatewayLogRole: boolean;
  mqtt: boolean;
  dashboard: boolean;
  fanoutMaxConcurrency: number;
}

const DEFAULTS: Settings = {
  tokenUse: ['id', 'access'],
  stageName: 'prod',
  removalPolicy: RemovalPolicy.RETAIN,
  logLevel: 'info',
  logRetention: RetentionDays.ONE_MONTH,
  throttle: { rateLimit: 1000, burstLimit: 500 },
  accessLogs: true,
  createApiGatewayLogRole: false,
  mqtt: true,
  dashboard: true,
  fanoutMaxConcurrency: DEFAULT_FANOUT_MAX_CONCURRENCY,
};

const USER_POOL_ID_PATTERN = /^[\w-]+_[0-9a-zA-Z]+$/;
const STAGE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const LOG_LEVELS: readonly HandlerLogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

// Paths are resolved from this file, not from process.cwd(), so that `cdk synth` from the infra package,
// vitest from the repo root and a consumer's app all bundle the same files.
const repoFile = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
/** A Lambda entry point of the construct: a file of lambdas/src/handlers/. */
export type RealtimeHandlerName =
  | WsHandlerName
  | IotHandlerName
  | typeof FANOUT_WORKER_HANDLER
  | typeof TOKEN_SWEEPER_HANDLER;
type HandlerName = RealtimeHandlerName;
const handlerEntry = (name: HandlerName) => repoFile(`lambdas/src/handlers/${name}.ts`);

/**
 * viba-realtime on AWS: the single DynamoDB table, the API Gateway WebSocket API with one route per entry
 * of the protocol's `WS_ROUTES`, its Cognito REQUEST authorizer on `$connect`, and its two Lambda functions;
 * (unless {@link RealtimeProps.mqtt} is off) the MQTT channel on IoT Core: a custom authorizer, one topic
 * rule per entry of the protocol's `IOT_RULES`, and their three Lambda functions; the fan-out queue (SQS,
 * with a dead-letter queue) and its worker Lambda; the token sweeper Lambda and one EventBridge `rate(...)` rule
 * per entry of the protocol's `SCHEDULES`; alarms (function errors, throttles, dead letters) and, unless
 * {@link RealtimeProps.dashboard} is off, a dashboard.
 *
 * Every function has a role of its own, allowed exactly what it calls (see the grants' doc comments and
 * policy.test.ts); the cdk-nag findings this design raises are explained in nag.ts
 * (`acknowledgeRealtimeNagFindings`).
 *
 * A backend that notifies users or announces gets what it needs with {@link Realtime.grantPublish} and
 * {@link Realtime.publisherEnvironment}; a client app with {@link Realtime.clientConfig}.
 *
 * @example
 * const realtime = new Realtime(this, 'Realtime', {
 *   userPool,                                  // or 'eu-west-1_AbCdEf123'
 *   userPoolClientIds: [webClient.userPoolClientId],
 * });
 * new CfnOutput(this, 'ClientConfig', { value: Stack.of(this).toJsonString(realtime.clientConfig()) });
 *
 * const backend = new NodejsFunction(this, 'Backend', { environment: realtime.publisherEnvironment });
 * realtime.grantPublish(backend);
 */
export class Realtime extends Construct {
  /** The single table of the layout in the protocol's `TABLE`. */
  readonly table: Table;
  /** The WebSocket API. */
  readonly webSocketApi: WebSocketApi;
  /** The auto-deployed stage of {@link Realtime.webSocketApi}. */
  readonly stage: WebSocketStage;
  /** One route per entry of the protocol's `WS_ROUTES`, in its order. */
  readonly routes: readonly RealtimeRoute[];
  /** `wss://` URL clients connect to. */
  readonly webSocketUrl: string;
  /** `https://` base URL of the `@connections` management API of the stage. */
  readonly connectionsEndpoint: string;
  /** The `$connect` REQUEST authorizer (no data access). */
  readonly authorizerFunction: NodejsFunction;
  /** The function behind every route. */
  readonly routesFunction: NodejsFunction;
  /** The stage's access log, when {@link RealtimeProps.accessLogs} is on. */
  readonly accessLogGroup: LogGroup | undefined;
  /** The MQTT channel, when {@link RealtimeProps.mqtt} is on. */
  readonly mqtt: RealtimeMqtt | undefined;
  /** The fan-out queue, its worker and dead-letter queue, and their alarms. */
  readonly fanout: RealtimeFanout;
  /** The `token-sweeper` Lambda: closes the WebSocket connections whose token has expired (API Gateway keeps an
   * idle one open past it), on the schedule of {@link Realtime.schedules}. */
  readonly tokenSweeperFunction: NodejsFunction;
  /** One EventBridge rule per entry of the protocol's `SCHEDULES`, with the function it runs, by handler name. */
  readonly schedules: Readonly<Record<ScheduledHandlerName, RealtimeSchedule>>;
  /** Id of the Cognito user pool whose tokens connect (a token when the pool was passed as an object). */
  readonly userPoolId: string;
  /** The app clients whose tokens are accepted. */
  readonly userPoolClientIds: readonly string[];
  /** Every Lambda function of the construct, by handler name (the `iot-*` ones only with the MQTT channel). */
  readonly functions: Readonly<Partial<Record<RealtimeHandlerName, NodejsFunction>>>;
  /**
   * Per function, in alarm when it failed (threw or timed out) in the last 5 minutes. All but `ws-authorizer`:
   * it throws `Unauthorized` for every connect without a token (API Gateway's 401), so its errors count
   * strangers, not faults; its errors are on the dashboard.
   */
  readonly errorAlarms: Readonly<Partial<Record<RealtimeHandlerName, Alarm>>>;
  /** In alarm when Lambda throttled any function of the construct in the last 5 minutes (concurrency exhausted). */
  readonly throttlesAlarm: Alarm;
  /** Every alarm of the construct, with no action: add yours (`alarm.addAlarmAction(new SnsAction(topic))`). */
  readonly alarms: readonly Alarm[];
  /** The CloudWatch dashboard, unless {@link RealtimeProps.dashboard} is off. */
  readonly dashboard: Dashboard | undefined;
  /** The account-level API Gateway CloudWatch role, when {@link RealtimeProps.createApiGatewayLogRole} is on. */
  readonly apiGatewayLogRole: Role | undefined;
  /**
   * The environment a backend Lambda needs to publish (notify, announce, disconnect) with the lambdas
   * package's publisher: `VIBA_TABLE_NAME`, `VIBA_CONNECTIONS_ENDPOINT`, `VIBA_FANOUT_QUEUE_URL` and, with the
   * MQTT channel, `VIBA_IOT_ENDPOINT`. Pair it with {@link Realtime.grantPublish}.
   */
  readonly publisherEnvironment: Readonly<Record<string, string>>;

  private readonly settings: Settings;
  /** The endpoint the MQTT deliveries are published to, when the channel is on. */
  private readonly iotEndpoint: IotEndpoint | undefined;
  /** Filled by {@link Realtime.createFunction}; read through {@link Realtime.functions}. */
  private readonly functionsByHandler: Partial<Record<HandlerName, NodejsFunction>> = {};
  private readonly errorAlarmsByHandler: Partial<Record<HandlerName, Alarm>> = {};

  constructor(scope: Construct, id: string, props: RealtimeProps) {
    super(scope, id);
    this.settings = resolveSettings(props);
    const userPoolId = validateProps(props, this.settings);
    this.userPoolId = userPoolId;
    this.userPoolClientIds = [...props.userPoolClientIds];
    this.functions = this.functionsByHandler;
    this.errorAlarms = this.errorAlarmsByHandler;

    this.table = this.createTable();
    // Before the functions that enqueue onto it; the worker comes once the stage's endpoint is known.
    const { queue, deadLetterQueue } = this.createFanoutQueues();

    const authEnv = {
      [ENV.userPoolId]: userPoolId,
      [ENV.clientIds]: props.userPoolClientIds.join(','),
      [ENV.tokenUse]: this.settings.tokenUse.join(','),
    };
    this.authorizerFunction = this.createFunction('Authorizer', WS_HANDLERS.authorizer, {
      environment: authEnv,
      // See errorAlarms: its errors are mostly connects without a token.
      errorsAlarm: undefined,
    });
    // Looked up before the routes function, which publishes to the MQTT members of a room.
    const iotEndpoint = this.settings.mqtt ? this.lookUpIotDataEndpoint() : undefined;
    this.iotEndpoint = iotEndpoint;
    this.routesFunction = this.createFunction('Routes', WS_HANDLERS.routes, {
      errorsAlarm: 'the WebSocket routes function',
      environment: {
        [ENV.tableName]: this.table.tableName,
        ...(iotEndpoint ? { [ENV.iotEndpoint]: iotEndpoint.url } : {}),
        // Notifications and announcements to large audiences are split onto the queue.
        [ENV.fanoutQueueUrl]: queue.queueUrl,
      },
    });

    this.webSocketApi = new WebSocketApi(this, 'Api', {
      routeSelectionExpression: ROUTE_SELECTION_EXPRESSION,
      description: 'viba-realtime WebSocket API',
    });
    this.routes = this.addRoutes();

    this.accessLogGroup = this.settings.accessLogs ? this.createLogGroup('AccessLogs') : undefined;
    this.apiGatewayLogRole = this.settings.createApiGatewayLogRole ? this.createApiGatewayLogRole() : undefined;
    this.stage = this.createStage(this.accessLogGroup);
    this.webSocketUrl = this.stage.url;
    this.connectionsEndpoint = this.stage.callbackUrl;

    this.grantTable(this.routesFunction, ROUTES_TABLE_ACTIONS);
    // Scoped to this API and stage: `grantManageConnections` on the API would allow every stage.
    this.stage.grantManagementApiAccess(this.routesFunction);
    grantSendMessage(queue, this.routesFunction);

    this.mqtt = iotEndpoint ? this.createMqttChannel(iotEndpoint, authEnv, queue) : undefined;
    if (this.mqtt) {
      // Fan-out from a WebSocket send reaches the room's MQTT members on their room topics; notifications and
      // announcements (a client's `announce` runs here) reach MQTT clients on the inbox and announcement topics.
      this.grantIotPublish(this.routesFunction, IOT_DELIVERY_TOPICS);
    }

    this.publisherEnvironment = {
      [ENV.tableName]: this.table.tableName,
      // A backend's invocation carries no API Gateway event to read the endpoint from.
      [ENV.connectionsEndpoint]: this.connectionsEndpoint,
      ...(iotEndpoint ? { [ENV.iotEndpoint]: iotEndpoint.url } : {}),
      [ENV.fanoutQueueUrl]: queue.queueUrl,
    };
    this.fanout = this.createFanoutWorker(queue, deadLetterQueue);
    this.tokenSweeperFunction = this.createTokenSweeper();
    this.schedules = this.createSchedules({ [TOKEN_SWEEPER_HANDLER]: this.tokenSweeperFunction });
    this.throttlesAlarm = this.createThrottlesAlarm();
    this.alarms = [this.fanout.deadLetterAlarm, ...Object.values(this.errorAlarmsByHandler), this.throttlesAlarm];
    this.dashboard = this.settings.dashboard ? this.createDashboard() : undefined;
  }

  /**
   * What a client app needs to reach this deployment, in the shape of the protocol's `RealtimeClientConfig`:
   * the SDK takes it as is (`createRealtimeClient({ config, getToken })`) and the emulator serves the same
   * shape at `GET /dev/client-config`. Values known only at deploy time (region, WebSocket URL, IoT endpoint)
   * are tokens: render it with `Stack.of(scope).toJsonString(realtime.clientConfig())`, as the app stack's
   * `ClientConfig` output does.
   *
   * @example
   * new CfnOutput(this, 'ClientConfig', { value: Stack.of(this).toJsonString(realtime.clientConfig()) });
   */
  clientConfig(): RealtimeClientConfig {
    return {
      version: CLIENT_CONFIG_VERSION,
      region: Stack.of(this).region,
      userPoolId: this.userPoolId,
      userPoolClientIds: [...this.userPoolClientIds],
      websocket: { url: this.webSocketUrl },
      ...(this.mqtt
        ? { mqtt: { url: `wss://${this.mqtt.endpointAddress}/mqtt`, authorizerName: this.mqtt.authorizerName } }
        : {}),
    };
  }

  /**
   * Lets `grantee` (a backend's Lambda or role) do what the lambdas package's publisher does: notify users,
   * announce, and disconnect a user. Exactly:
   * - `dynamodb:GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query`, `BatchWriteItem` on the table, and
   *   `Query` on its index (those of the routes function, {@link ROUTES_TABLE_ACTIONS}; no scans, no DDL);
   * - `execute-api:ManageConnections` on this API's stage only (post to and close WebSocket connections);
   * - `sqs:SendMessage` on the fan-out queue (large audiences are split onto it; `SendMessageBatch` is
   *   authorized by this action);
   * - with the MQTT channel: `iot:Publish` on the topics the server delivers to ({@link IOT_DELIVERY_TOPICS}:
   *   members' room topics, inboxes, `rt/announcements`, `rt/announcements/groups/*`), and
   *   `iot:DeleteConnection` on `client/*` of this account and region. IoT can scope that action only by
   *   client id, and ours are `{sub}` or `{sub}.{suffix}` for any sub, so no narrower pattern covers them:
   *   it also allows disconnecting IoT clients of the account that are not viba-realtime's.
   *
   * Give the function {@link Realtime.publisherEnvironment} as well.
   * @returns the grants, combined
   */
  grantPublish(grantee: IGrantable): Grant {
    let grant = this.grantTable(grantee, ROUTES_TABLE_ACTIONS)
      .combine(this.stage.grantManagementApiAccess(grantee))
      .combine(grantSendMessage(this.fanout.queue, grantee));
    if (this.iotEndpoint) {
      const stack = Stack.of(this);
      grant = grant.combine(this.grantIotPublish(grantee, IOT_DELIVERY_TOPICS)).combine(
        Grant.addToPrincipal({
          grantee,
          actions: ['iot:DeleteConnection'],
          resourceArns: [
            stack.formatArn({
              service: 'iot',
              resource: 'client',
              resourceName: '*',
              arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
            }),
          ],
        }),
      );
    }
    return grant;
  }

  /** The fan-out queue (encrypted, TLS only) and its dead-letter queue. */
  private createFanoutQueues(): { queue: Queue; deadLetterQueue: Queue } {
    const deadLetterQueue = new Queue(this, 'FanoutDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS keeps a message: time to look at a failed batch (its frame and targets).
      retentionPeriod: Duration.days(14),
    });
    const queue = new Queue(this, 'FanoutQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // What AWS recommends for a Lambda event source: six times the function's timeout, so a message is
      // not handed to a second worker while the first may still be running it (or retrying its throttles).
      visibilityTimeout: Duration.seconds(FANOUT_WORKER_TIMEOUT.toSeconds() * 6),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: FANOUT_MAX_RECEIVE_COUNT },
    });
    return { queue, deadLetterQueue };
  }

  /** The worker that drains the fan-out queue, and the alarms on it and the dead-letter queue. */
  private createFanoutWorker(queue: Queue, deadLetterQueue: Queue): RealtimeFanout {
    const workerFunction = this.createFunction('FanoutWorker', FANOUT_WORKER_HANDLER, {
      errorsAlarm: 'the fan-out worker',
      environment: {
        [ENV.tableName]: this.table.tableName,
        // An SQS event carries no API Gateway domain to build the endpoint from.
        [ENV.connectionsEndpoint]: this.connectionsEndpoint,
        ...(this.iotEndpoint ? { [ENV.iotEndpoint]: this.iotEndpoint.url } : {}),
        // A batch's failed deliveries are re-queued as a smaller batch.
        [ENV.fanoutQueueUrl]: queue.queueUrl,
      },
    });
    workerFunction.addEventSource(
      new SqsEventSource(queue, {
        // One message is one batch of up to LIMITS.fanoutBatchSize connections: one per invocation, so a
        // failed batch is retried alone and the claim/checkpoint covers exactly what the invocation does.
        batchSize: 1,
        reportBatchItemFailures: true,
        // Bounds the posts in flight (workers x LIMITS.deliveryConcurrency) under API Gateway's account-level
        // rate; see DEFAULT_FANOUT_MAX_CONCURRENCY.
        maxConcurrency: this.settings.fanoutMaxConcurrency,
      }),
    );
    this.grantTable(workerFunction, ROUTES_TABLE_ACTIONS);
    this.stage.grantManagementApiAccess(workerFunction);
    grantSendMessage(queue, workerFunction);
    if (this.iotEndpoint) this.grantIotPublish(workerFunction, IOT_DELIVERY_TOPICS);

    const deadLetterAlarm = new Alarm(this, 'FanoutDeadLetterAlarm', {
      alarmDescription:
        'viba-realtime: a fan-out batch failed every receive and is in the dead-letter queue; its deliveries were not made.',
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: ALARM_PERIOD,
        statistic: Stats.MAXIMUM,
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // SQS sends no datapoints for an idle queue.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const workerErrorsAlarm = this.errorAlarmsByHandler[FANOUT_WORKER_HANDLER] as Alarm;
    return { queue, deadLetterQueue, workerFunction, deadLetterAlarm, workerErrorsAlarm };
  }

  /**
   * The token sweeper. It reaches only WebSocket connections (the token-expiry index lists nothing else), so it
   * gets neither the IoT endpoint nor the fan-out queue: the table, the stage's `@connections` endpoint (a
   * scheduled event carries none) and what it does with them: list expired tokens (index Query), post
   * `token_expired` and close (ManageConnections), and remove a connection found gone
   * ({@link TOKEN_SWEEPER_TABLE_ACTIONS}).
   */
  private createTokenSweeper(): NodejsFunction {
    const fn = this.createFunction('TokenSweeper', TOKEN_SWEEPER_HANDLER, {
      errorsAlarm: 'the token sweeper',
      environment: {
        [ENV.tableName]: this.table.tableName,
        [ENV.connectionsEndpoint]: this.connectionsEndpoint,
      },
    });
    this.grantTable(fn, TOKEN_SWEEPER_TABLE_ACTIONS);
    this.grantIndexQuery(fn);
    this.stage.grantManagementApiAccess(fn);
    return fn;
  }

  /**
   * One EventBridge `rate(...)` rule per entry of the protocol's `SCHEDULES`, invoking its function. A run that
   * failed or could not start is not worth keeping past its period, when the next run starts over: EventBridge
   * retries a failed invoke once within the period, and Lambda does not retry a failed run (it would overlap the
   * next one) nor keep an event queued longer than the period (throttled).
   */
  private createSchedules(
    functions: Record<ScheduledHandlerName, NodejsFunction>,
  ): Record<ScheduledHandlerName, RealtimeSchedule> {
    const schedules: Partial<Record<ScheduledHandlerName, RealtimeSchedule>> = {};
    for (const definition of SCHEDULES) {
      const fn = functions[definition.handler];
      const period = Duration.minutes(definition.rateMinutes);
      fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: period });
      const rule = new Rule(this, `${pascalCase(definition.handler)}Schedule`, {
        description: `viba-realtime: runs ${definition.handler} every ${plural(definition.rateMinutes, 'minute')}.`,
        schedule: Schedule.rate(period),
        // The target's permission lets EventBridge invoke the function from this rule only.
        targets: [new LambdaFunction(fn, { retryAttempts: 1, maxEventAge: period })],
      });
      schedules[definition.handler] = { definition, function: fn, rule };
    }
    return schedules as Record<ScheduledHandlerName, RealtimeSchedule>;
  }

  /**
   * The account's IoT data endpoint (`iot:Data-ATS`), read at deploy time by a custom resource: it is one per
   * account and region, and not known to CloudFormation. Synth stays offline; only the deployment calls IoT.
   */
  private lookUpIotDataEndpoint(): IotEndpoint {
    const describe = {
      service: 'Iot',
      action: 'describeEndpoint',
      parameters: { endpointType: 'iot:Data-ATS' },
      physicalResourceId: PhysicalResourceId.of('iot:Data-ATS'),
      outputPaths: ['endpointAddress'],
    };
    // The provider is one Lambda per stack, shared by every AwsCustomResource in it: the first one to be
    // created sets its role and log group, and a later one's are ignored. Make ours only when it is first.
    const stack = Stack.of(this);
    const providerExists =
      stack.node.tryFindChild(`AWS${AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`) !== undefined;
    const provider = providerExists
      ? {}
      : (() => {
          const logGroup = this.createLogGroup('IotDataEndpointLogs');
          const role = this.createFunctionRole(
            'IotDataEndpointRole',
            logGroup,
            'AwsCustomResource provider of the stack (viba-realtime: IoT data endpoint lookup).',
          );
          return { logGroup, role };
        })();
    const lookup = new AwsCustomResource(this, 'IotDataEndpoint', {
      onCreate: describe,
      onUpdate: describe,
      policy: AwsCustomResourcePolicy.fromStatements([
        // iot:DescribeEndpoint has no resource-level permissions (it names no resource; the Service
        // Authorization Reference lists no resource type for it), so `*` is the only resource it accepts.
        new PolicyStatement({ actions: ['iot:DescribeEndpoint'], resources: ['*'] }),
      ]),
      // The SDK in the Lambda runtime is enough; installing the latest would reach npm at deploy time.
      installLatestAwsSdk: false,
      ...provider,
    });
    const address = lookup.getResponseField('endpointAddress');
    return { address, url: `https://${address}`, lookup };
  }

  private createMqttChannel(endpoint: IotEndpoint, authEnv: Record<string, string>, fanoutQueue: Queue): RealtimeMqtt {
    const stack = Stack.of(this);
    // IoT names are per account and region: unique per construct path, and readable (`..._requests`).
    // Authorizer names allow `[\w=,@-]`, rule names only `[A-Za-z0-9_]`.
    const namePrefix = Names.uniqueResourceName(this, { maxLength: 96 });

    const authorizerFunction = this.createFunction('IotAuthorizer', IOT_HANDLERS.authorizer, {
      // It refuses a bad token with isAuthenticated: false; it throws only when it cannot check one.
      errorsAlarm: 'the IoT custom authorizer',
      environment: {
        ...authEnv,
        [ENV.tableName]: this.table.tableName,
        // The ARNs in the policies it returns name the account, which a Lambda's environment lacks.
        [ENV.iotAccountId]: stack.account,
      },
    });
    // The rule Lambdas get no API Gateway event to read the @connections endpoint from, nor an IoT one.
    const ruleEnv = {
      [ENV.tableName]: this.table.tableName,
      [ENV.iotEndpoint]: endpoint.url,
      [ENV.connectionsEndpoint]: this.connectionsEndpoint,
    };
    // IoT invokes rule Lambdas asynchronously, so API Gateway's limit does not bind them; the send path's
    // claim takeover (LIMITS.dedupeClaimStaleMs) still assumes no send runs longer, as in the routes function.
    const ingressFunction = this.createFunction('IotIngress', IOT_HANDLERS.ingress, {
      errorsAlarm: 'the IoT ingress rule function',
      // It runs MQTT clients' requests, `announce` included, as the routes function runs WebSocket ones.
      environment: { ...ruleEnv, [ENV.fanoutQueueUrl]: fanoutQueue.queueUrl },
    });
    const presenceFunction = this.createFunction('IotPresence', IOT_HANDLERS.presence, {
      errorsAlarm: 'the IoT lifecycle (presence) rule function',
      environment: ruleEnv,
    });

    const authorizerName = `${namePrefix}_authorizer`;
    const authorizerArn = stack.formatArn({
      service: 'iot',
      resource: 'authorizer',
      resourceName: authorizerName,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    // The ARN is built from the name rather than read from the authorizer, so the authorizer can depend on
    // its permission: IoT never holds an authorizer it may not invoke.
    const authorizerPermission = this.allowIotToInvoke('IotAuthorizerInvoke', authorizerFunction, authorizerArn);
    const authorizer = new CfnAuthorizer(this, 'IotCustomAuthorizer', {
      authorizerName,
      authorizerFunctionArn: authorizerFunction.functionArn,
      // Clients send a Cognito JWT (MQTT password, or `token` query parameter over WebSocket) that the Lambda
      // verifies itself; IoT's token signing would need a second, IoT-specific signature on every connect.
      signingDisabled: true,
      status: 'ACTIVE',
      // Only used for HTTPS publishes, which this channel has none of; caching would also outlive a revoked token.
      enableCachingForHttp: false,
    });
    authorizer.addResourceDependency(authorizerPermission);

    const ruleErrorLogGroup = this.createLogGroup('IotRuleErrors');
    const ruleErrorRole = this.createRuleErrorRole(ruleErrorLogGroup, `${namePrefix}_*`);
    const targets: Record<IotRuleTarget, NodejsFunction> = { ingress: ingressFunction, presence: presenceFunction };
    const rules: Record<string, CfnTopicRule> = {};
    for (const definition of IOT_RULES) {
      const id = pascalCase(definition.name);
      const target = targets[definition.target];
      const ruleName = `${namePrefix}_${definition.name}`;
      const ruleArn = stack.formatArn({
        service: 'iot',
        resource: 'rule',
        resourceName: ruleName,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
      const permission = this.allowIotToInvoke(`IotRule${id}Invoke`, target, ruleArn);
      const rule = new CfnTopicRule(this, `IotRule${id}`, {
        ruleName,
        topicRulePayload: {
          description: `viba-realtime: ${definition.filter} -> ${IOT_HANDLERS[definition.target]}`,
          sql: definition.sql,
          awsIotSqlVersion: IOT_SQL_VERSION,
          ruleDisabled: false,
          actions: [{ lambda: { functionArn: target.functionArn } }],
          // Runs when the action itself fails (throttled or refused invoke), not when the Lambda throws:
          // IoT invokes asynchronously, and the function's own logs and metrics show its errors.
          errorAction: {
            cloudwatchLogs: { logGroupName: ruleErrorLogGroup.logGroupName, roleArn: ruleErrorRole.roleArn },
          },
        },
      });
      rule.addResourceDependency(permission);
      rules[definition.name] = rule;
    }

    this.grantTable(authorizerFunction, IOT_AUTHORIZER_TABLE_ACTIONS);
    this.grantTable(ingressFunction, ROUTES_TABLE_ACTIONS);
    this.grantTable(presenceFunction, IOT_PRESENCE_TABLE_ACTIONS);
    // Both deliver room frames to WebSocket members too (a send or a `left` announcement).
    this.stage.grantManagementApiAccess(ingressFunction);
    this.stage.grantManagementApiAccess(presenceFunction);
    this.grantIotPublish(ingressFunction, [...IOT_DELIVERY_TOPICS, IOT_PUBLISH_TOPICS.responses]);
    grantSendMessage(fanoutQueue, ingressFunction);
    this.grantIotPublish(presenceFunction, [IOT_PUBLISH_TOPICS.userRooms]);

    return {
      endpointAddress: endpoint.address,
      dataEndpoint: endpoint.url,
      authorizer,
      authorizerName,
      authorizerFunction,
      ingressFunction,
      presenceFunction,
      rules,
      ruleErrorLogGroup,
      endpointLookup: endpoint.lookup,
    };
  }

  /** Lets IoT Core invoke `fn` on behalf of exactly one IoT resource (an authorizer or a rule) of this account. */
  private allowIotToInvoke(id: string, fn: IFunction, sourceArn: string): CfnPermission {
    return new CfnPermission(this, id, {
      action: 'lambda:InvokeFunction',
      functionName: fn.functionArn,
      principal: 'iot.amazonaws.com',
      sourceArn,
      sourceAccount: Stack.of(this).account,
    });
  }

  /** The role IoT assumes to write a rule's failed action to the log group, and only that. */
  private createRuleErrorRole(logGroup: LogGroup, ruleNamePattern: string): Role {
    const stack = Stack.of(this);
    const role = new Role(this, 'IotRuleErrorRole', {
      description: 'Lets the viba-realtime IoT rules log a failed action.',
      // Confused-deputy guard: only this account's rules of this construct may assume it.
      assumedBy: new ServicePrincipal('iot.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: {
          'aws:SourceArn': stack.formatArn({
            service: 'iot',
            resource: 'rule',
            resourceName: ruleNamePattern,
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          }),
        },
      }),
    });
    // What IoT's CloudWatch Logs action needs (developer guide, cloudwatch-logs-rule-action.html).
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    return role;
  }

  /** `iot:Publish` on the given topics (names with `*`) of this account and region, nothing else. */
  private grantIotPublish(grantee: IGrantable, topicPatterns: readonly string[]): Grant {
    const stack = Stack.of(this);
    return Grant.addToPrincipal({
      grantee,
      actions: ['iot:Publish'],
      resourceArns: topicPatterns.map((topic) =>
        stack.formatArn({
          service: 'iot',
          resource: 'topic',
          resourceName: topic,
          arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
        }),
      ),
    });
  }

  private createTable(): Table {
    const table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      timeToLiveAttribute: TABLE.ttlAttribute,
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy: this.settings.removalPolicy,
    });
    for (const index of Object.values(TABLE.indexes)) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        // Every lookup through the index reads whole items; ALL saves a second GetItem per hit.
        projectionType: ProjectionType.ALL,
      });
    }
    return table;
  }

  /**
   * `actions` on the table; of them, `dynamodb:Query` also on the table's indexes, by name (the other actions
   * do not apply to an index). `Table.grant` would add `index/*` and every action on it.
   */
  private grantTable(grantee: IGrantable, actions: readonly string[]): Grant {
    const grant = Grant.addToPrincipal({ grantee, actions: [...actions], resourceArns: [this.table.tableArn] });
    return actions.includes('dynamodb:Query') ? grant.combine(this.grantIndexQuery(grantee)) : grant;
  }

  /** `dynamodb:Query` on the table's indexes, by name, and nothing else. */
  private grantIndexQuery(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:Query'],
      resourceArns: Object.values(TABLE.indexes).map((index) => `${this.table.tableArn}/index/${index.name}`),
    });
  }

  /**
   * A role Lambda assumes that may write to `logGroup` and nothing else yet. It replaces the default
   * `AWSLambdaBasicExecutionRole`, whose `logs:*` actions apply to every log group of the account.
   */
  private createFunctionRole(id: string, logGroup: LogGroup, description: string): Role {
    const role = new Role(this, id, { assumedBy: new ServicePrincipal('lambda.amazonaws.com'), description });
    // logs:CreateLogStream and logs:PutLogEvents on the group (its ARN ends in `:*`, covering its streams).
    logGroup.grantWrite(role);
    return role;
  }

  private createFunction(
    id: string,
    handler: HandlerName,
    options: {
      environment: Record<string, string>;
      /** What the function is, for its errors alarm's description; `undefined` for no errors alarm. */
      errorsAlarm: string | undefined;
    },
  ): NodejsFunction {
    const logGroup = this.createLogGroup(`${id}Logs`);
    const role = this.createFunctionRole(`${id}Role`, logGroup, `viba-realtime ${handler} Lambda function.`);
    const fn = new NodejsFunction(this, id, {
      entry: handlerEntry(handler),
      handler: 'handler',
      projectRoot: repoFile(''),
      depsLockFilePath: repoFile('package-lock.json'),
      role,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: 256,
      // The contract's table, which the emulator enforces too.
      timeout: Duration.millis(FUNCTION_TIMEOUTS_MS[handler]),
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      // The handlers' logger filters by ENV.logLevel itself and writes every line with console.log, which
      // Lambda classifies as INFO: a stricter level here would silently drop our warnings and errors.
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      environment: {
        ...options.environment,
        [ENV.logLevel]: this.settings.logLevel,
        // Without it the source map below is shipped but stack traces still point into minified code.
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // Some dependencies (parts of the AWS SDK) still call require(); ESM output has none of its own.
        banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // Ship the SDK version the tests ran against instead of whatever the runtime happens to carry.
        bundleAwsSDK: true,
        forceDockerBundling: false,
      },
    });
    this.functionsByHandler[handler] = fn;
    if (options.errorsAlarm !== undefined) {
      this.errorAlarmsByHandler[handler] = new Alarm(this, `${id}ErrorsAlarm`, {
        alarmDescription: `viba-realtime: ${options.errorsAlarm} (${handler}) failed (threw or timed out) in the last 5 minutes.`,
        metric: fn.metricErrors({ period: ALARM_PERIOD, statistic: Stats.SUM }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        // Lambda sends no datapoints for a function that did not run.
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }
    return fn;
  }

  /** One alarm over every function's throttles: throttling means the account's concurrency ran out, which
   * hits every function at once, so one alarm says it and the dashboard shows which. */
  private createThrottlesAlarm(): Alarm {
    const throttles: Record<string, IMetric> = {};
    Object.values(this.functionsByHandler).forEach((fn, i) => {
      throttles[`t${i}`] = fn.metricThrottles({ period: ALARM_PERIOD, statistic: Stats.SUM });
    });
    return new Alarm(this, 'ThrottlesAlarm', {
      alarmDescription:
        'viba-realtime: Lambda throttled a function in the last 5 minutes (account or function concurrency exhausted).',
      metric: new MathExpression({
        expression: 'SUM(METRICS())',
        usingMetrics: throttles,
        period: ALARM_PERIOD,
        label: 'Throttles, all functions',
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }

  /** A small dashboard: traffic and errors of the WebSocket API, per-function health, the fan-out queues, the
   * scheduled functions' runs. */
  private createDashboard(): Dashboard {
    const functions = Object.entries(this.functionsByHandler);
    const perFunction = (metric: (fn: NodejsFunction) => Metric) =>
      functions.map(([handler, fn]) => metric(fn).with({ label: handler }));
    const api = this.webSocketApi;
    const sum = { statistic: Stats.SUM };
    const { queue, deadLetterQueue } = this.fanout;
    const dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    dashboard.addWidgets(
      new GraphWidget({
        title: 'WebSocket: connects and messages',
        left: [
          api.metric('ConnectCount', { ...sum, label: 'connects' }),
          api.metric('MessageCount', { ...sum, label: 'messages' }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'WebSocket: errors',
        left: [
          api.metric('ClientError', { ...sum, label: '4xx (client)' }),
          api.metric('IntegrationError', { ...sum, label: 'integration' }),
          api.metric('ExecutionError', { ...sum, label: 'execution' }),
        ],
        width: 8,
      }),
      new AlarmStatusWidget({ title: 'Alarms', alarms: [...this.alarms], width: 8 }),
    );
    dashboard.addWidgets(
      new GraphWidget({ title: 'Lambda: errors', left: perFunction((fn) => fn.metricErrors(sum)), width: 8 }),
      new GraphWidget({ title: 'Lambda: throttles', left: perFunction((fn) => fn.metricThrottles(sum)), width: 8 }),
      new GraphWidget({
        title: 'Lambda: duration p99 (ms)',
        left: perFunction((fn) => fn.metricDuration({ statistic: Stats.p(99) })),
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Fan-out: messages waiting',
        left: [
          queue.metricApproximateNumberOfMessagesVisible({ statistic: Stats.MAXIMUM, label: 'queue' }),
          deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            statistic: Stats.MAXIMUM,
            label: 'dead-letter queue',
          }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Fan-out: age of the oldest message (s)',
        left: [queue.metricApproximateAgeOfOldestMessage({ statistic: Stats.MAXIMUM, label: 'queue' })],
        width: 12,
      }),
    );
    // A schedule that stops firing raises no function error: its runs show it, and EventBridge's failed invokes.
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Scheduled functions: runs',
        left: Object.values<RealtimeSchedule>(this.schedules).flatMap(({ definition, function: fn, rule }) => [
          fn.metricInvocations({ ...sum, label: `${definition.handler} runs` }),
          new Metric({
            namespace: 'AWS/Events',
            metricName: 'FailedInvocations',
            dimensionsMap: { RuleName: rule.ruleName },
            ...sum,
            label: `${definition.handler} failed invokes (EventBridge)`,
          }),
        ]),
        width: 24,
      }),
    );
    return dashboard;
  }

  private addRoutes(): RealtimeRoute[] {
    const functions: Record<WsHandlerName, IFunction> = {
      [WS_HANDLERS.authorizer]: this.authorizerFunction,
      [WS_HANDLERS.routes]: this.routesFunction,
    };
    // One integration per function, shared by its routes. Not named `Default`: CDK drops that id from
    // logical ids, which would collide with the `$default` route's resources.
    const integrations = new Map<WsHandlerName, WebSocketRouteIntegration>();
    const integrationFor = (handler: WsHandlerName) => {
      let integration = integrations.get(handler);
      if (!integration) {
        integration = new WebSocketLambdaIntegration(`${pascalCase(handler)}Integration`, functions[handler]);
        integrations.set(handler, integration);
      }
      return integration;
    };
    // No identity source, deliberately (docs/ARCHITECTURE.md, "Authorizer without identity source"; pinned by
    // realtime.test.ts): with `route.request.querystring.token` as the source, API Gateway would answer 401
    // itself whenever the query string lacks it, but the token may come in the query string (browsers) or in
    // the Authorization header (Node clients), and only the authorizer can tell "no token" (401) from "bad
    // token" (403). No source also means no authorizer result caching, right for a once-per-connection call.
    const authorizer = new WebSocketLambdaAuthorizer('ConnectAuthorizer', this.authorizerFunction, {
      identitySource: [],
    });

    return WS_ROUTES.map((definition) => ({
      definition,
      route: this.webSocketApi.addRoute(definition.routeKey, {
        integration: integrationFor(definition.handler),
        returnResponse: definition.returnResponse,
        ...(definition.authorized ? { authorizer } : {}),
      }),
    }));
  }

  private createLogGroup(id: string): LogGroup {
    return new LogGroup(this, id, {
      retention: this.settings.logRetention,
      removalPolicy: this.settings.removalPolicy,
    });
  }

  private createStage(accessLogGroup: LogGroup | undefined): WebSocketStage {
    const stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.webSocketApi,
      stageName: this.settings.stageName,
      autoDeploy: true,
      throttle: this.settings.throttle,
      ...(accessLogGroup
        ? { accessLogSettings: { destination: new LogGroupLogDestination(accessLogGroup), format: accessLogFormat() } }
        : {}),
    });
    if (this.apiGatewayLogRole) {
      stage.node.addDependency(this.createApiGatewayAccount(this.apiGatewayLogRole));
    }
    return stage;
  }

  /**
   * The role API Gateway writes every API's logs of the account and region with. AWS's managed policy is the
   * documented one: API Gateway creates the log groups itself (execution logs of any API), which no narrower
   * statement of this stack could name.
   */
  private createApiGatewayLogRole(): Role {
    const role = new Role(this, 'ApiGatewayLogRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return role;
  }

  private createApiGatewayAccount(role: Role): CfnAccount {
    const account = new CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.node.addDependency(role);
    return account;
  }
}

/** `sqs:SendMessage` on the queue and nothing else (`queue.grantSendMessages` adds GetQueueAttributes and
 * GetQueueUrl, which the enqueuer does not call; `SendMessageBatch` is authorized by `sqs:SendMessage`). */
function grantSendMessage(queue: Queue, grantee: IGrantable): Grant {
  return queue.grant(grantee, 'sqs:SendMessage');
}

function resolveSettings(props: RealtimeProps): Settings {
  return {
    tokenUse: props.tokenUse ? [...new Set(props.tokenUse)] : DEFAULTS.tokenUse,
    stageName: props.stageName ?? DEFAULTS.stageName,
    removalPolicy: props.removalPolicy ?? DEFAULTS.removalPolicy,
    logLevel: props.logLevel ?? DEFAULTS.logLevel,
    logRetention: props.logRetention ?? DEFAULTS.logRetention,
    // Per setting, so that leaving one out (or passing undefined) never leaves the stage without it.
    throttle: {
      rateLimit: props.throttle?.rateLimit ?? DEFAULTS.throttle.rateLimit,
      burstLimit: props.throttle?.burstLimit ?? DEFAULTS.throttle.burstLimit,
    },
    accessLogs: props.accessLogs ?? DEFAULTS.accessLogs,
    createApiGatewayLogRole: props.createApiGatewayLogRole ?? DEFAULTS.createApiGatewayLogRole,
    mqtt: props.mqtt ?? DEFAULTS.mqtt,
    dashboard: props.dashboard ?? DEFAULTS.dashboard,
    fanoutMaxConcurrency: props.fanoutMaxConcurrency ?? DEFAULTS.fanoutMaxConcurrency,
  };
}

/** Fails at synth time with a message that names the prop, and returns the user pool id. */
function validateProps(props: RealtimeProps, settings: Settings): string {
  const userPoolId = typeof props.userPool === 'string' ? props.userPool : props.userPool.userPoolId;
  if (!Token.isUnresolved(userPoolId) && !USER_POOL_ID_PATTERN.test(userPoolId)) {
    throw new Error(`Realtime: userPool "${userPoolId}" is not a Cognito user pool id (expected region_id).`);
  }
  if (!Array.isArray(props.userPoolClientIds) || props.userPoolClientIds.length === 0) {
    throw new Error(
      'Realtime: userPoolClientIds must list at least one app client id; tokens of any client are never accepted.',
    );
  }
  for (const clientId of props.userPoolClientIds) {
    if (Token.isUnresolved(clientId)) continue;
    // The ids travel comma-joined in one environment variable.
    if (clientId.trim() === '' || clientId.includes(',')) {
      throw new Error(`Realtime: userPoolClientIds has an invalid client id "${clientId}".`);
    }
  }
  if (settings.tokenUse.length === 0 || settings.tokenUse.some((use) => use !== 'id' && use !== 'access')) {
    throw new Error(`Realtime: tokenUse must be a non-empty list of 'id' and/or 'access'.`);
  }
  if (!Token.isUnresolved(settings.stageName) && !STAGE_NAME_PATTERN.test(settings.stageName)) {
    throw new Error(`Realtime: stageName "${settings.stageName}" must be 1-128 characters from [A-Za-z0-9_-].`);
  }
  if (!LOG_LEVELS.includes(settings.logLevel)) {
    throw new Error(`Realtime: logLevel must be one of ${LOG_LEVELS.join(', ')}.`);
  }
  const { rateLimit, burstLimit } = settings.throttle;
  // API Gateway takes a stage's rate as a double and its burst as an integer; 0 would refuse every message,
  // which is a way to take the service down, not a throttle.
  if (rateLimit !== undefined && !Token.isUnresolved(rateLimit) && !(Number.isFinite(rateLimit) && rateLimit > 0)) {
    throw new Error(`Realtime: throttle.rateLimit must be a positive number of requests per second, not ${rateLimit}.`);
  }
  if (
    burstLimit !== undefined &&
    !Token.isUnresolved(burstLimit) &&
    !(Number.isInteger(burstLimit) && burstLimit >= 1)
  ) {
    throw new Error(`Realtime: throttle.burstLimit must be a whole number of requests, at least 1, not ${burstLimit}.`);
  }
  if (settings.removalPolicy === RemovalPolicy.SNAPSHOT) {
    throw new Error(
      'Realtime: removalPolicy SNAPSHOT is not supported by DynamoDB tables or log groups; use RETAIN (the default) or DESTROY.',
    );
  }
  if (settings.createApiGatewayLogRole && !settings.accessLogs) {
    throw new Error(
      'Realtime: createApiGatewayLogRole only serves the access logs; with accessLogs: false it would change the ' +
        "account's API Gateway settings for nothing. Drop one of the two.",
    );
  }
  const concurrency = settings.fanoutMaxConcurrency;
  // Lambda's range for an SQS event source's maximum concurrency.
  if (!Token.isUnresolved(concurrency) && !(Number.isInteger(concurrency) && concurrency >= 2 && concurrency <= 1000)) {
    throw new Error(`Realtime: fanoutMaxConcurrency must be a whole number from 2 to 1000, not ${concurrency}.`);
  }
  return userPoolId;
}

/** One JSON object per connect, message and disconnect, so CloudWatch Logs Insights can query fields. */
function accessLogFormat(): AccessLogFormat {
  return AccessLogFormat.custom(
    JSON.stringify({
      requestId: '$context.requestId',
      requestTime: '$context.requestTime',
      eventType: '$context.eventType',
      routeKey: '$context.routeKey',
      connectionId: '$context.connectionId',
      status: '$context.status',
      sourceIp: '$context.identity.sourceIp',
      principalId: '$context.authorizer.principalId',
      authorizeStatus: '$context.authorize.status',
      authorizeError: '$context.authorize.error',
      integrationLatency: '$context.integration.latency',
      integrationStatus: '$context.integration.status',
      error: '$context.error.message',
    }),
  );
}

/** `1 minute`, `5 minutes`. */
function plural(count: number, unit: string): string {
  return count === 1 ? `1 ${unit}` : `${count} ${unit}s`;
}

function pascalCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, _dash, letter: string) => letter.toUpperCase());
}
