/**
 * The viba-realtime construct: everything one deployment needs, built from the protocol's contract (route
 * table, table layout, environment names) so that AWS and the emulator cannot drift apart.
 *
 * This first version holds the WebSocket part only. Later parts (MQTT over IoT Core, the fan-out queue,
 * alarms) are meant to be added as further private `create*` steps that reuse {@link Realtime.table} and
 * the shared function settings, not as a second construct.
 */
import { fileURLToPath } from 'node:url';
import {
  APIGW_LIMITS,
  ENV,
  ROUTE_SELECTION_EXPRESSION,
  TABLE,
  WS_HANDLERS,
  WS_ROUTES,
  type WsHandlerName,
} from '@viba-realtime/protocol';
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import {
  LogGroupLogDestination,
  type ThrottleSettings,
  WebSocketApi,
  type WebSocketRouteIntegration,
  WebSocketStage,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IUserPool } from 'aws-cdk-lib/aws-cognito';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { ApplicationLogLevel, Architecture, type IFunction, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
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
   * Removal policy of the stateful resources: the table and the log groups.
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
   * Default throttling of every route of the stage: steady requests per second and burst size. API
   * Gateway's account-level quota still applies on top of it.
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
   * logging of other APIs that rely on the setting.
   * @default false
   */
  readonly createApiGatewayLogRole?: boolean;
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

interface Settings {
  tokenUse: TokenUse[];
  stageName: string;
  removalPolicy: RemovalPolicy;
  logLevel: HandlerLogLevel;
  logRetention: RetentionDays;
  throttle: ThrottleSettings;
  accessLogs: boolean;
  createApiGatewayLogRole: boolean;
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
};

const USER_POOL_ID_PATTERN = /^[\w-]+_[0-9a-zA-Z]+$/;
const STAGE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const LOG_LEVELS: readonly HandlerLogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

// Paths are resolved from this file, not from process.cwd(), so that `cdk synth` from the infra package,
// vitest from the repo root and a consumer's app all bundle the same files.
const repoFile = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const handlerEntry = (name: WsHandlerName) => repoFile(`lambdas/src/handlers/${name}.ts`);

/**
 * viba-realtime on AWS: the single DynamoDB table, the API Gateway WebSocket API with one route per entry
 * of the protocol's `WS_ROUTES`, its Cognito REQUEST authorizer on `$connect`, and the two Lambda functions.
 *
 * @example
 * const realtime = new Realtime(this, 'Realtime', {
 *   userPool,                                  // or 'eu-west-1_AbCdEf123'
 *   userPoolClientIds: [webClient.userPoolClientId],
 * });
 * new CfnOutput(this, 'Url', { value: realtime.webSocketUrl });
 */
export class Realtime extends Construct {
  /** The single table of the layout in the protocol's `TABLE`. */
  readonly table: Table;
  /** The WebSocket API. */
  readonly webSocketApi: WebSocketApi;
  /** The auto-deployed stage of {@link Realtime.webSocketApi}. */
  readonly stage: WebSocketStage;
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

  private readonly settings: Settings;

  constructor(scope: Construct, id: string, props: RealtimeProps) {
    super(scope, id);
    this.settings = resolveSettings(props);
    const userPoolId = validateProps(props, this.settings);

    this.table = this.createTable();

    const authEnv = {
      [ENV.userPoolId]: userPoolId,
      [ENV.clientIds]: props.userPoolClientIds.join(','),
      [ENV.tokenUse]: this.settings.tokenUse.join(','),
    };
    this.authorizerFunction = this.createFunction('Authorizer', WS_HANDLERS.authorizer, {
      timeout: Duration.seconds(10),
      environment: authEnv,
    });
    // API Gateway gives up on an integration after 29 s; a longer Lambda timeout would only bill for work
    // whose answer nobody receives. The send path's claim takeover (LIMITS.dedupeClaimStaleMs) relies on it.
    this.routesFunction = this.createFunction('Routes', WS_HANDLERS.routes, {
      timeout: Duration.millis(APIGW_LIMITS.integrationTimeoutMs),
      environment: { [ENV.tableName]: this.table.tableName },
    });

    this.webSocketApi = new WebSocketApi(this, 'Api', {
      routeSelectionExpression: ROUTE_SELECTION_EXPRESSION,
      description: 'viba-realtime WebSocket API',
    });
    this.addRoutes();

    this.accessLogGroup = this.settings.accessLogs ? this.createLogGroup('AccessLogs') : undefined;
    this.stage = this.createStage(this.accessLogGroup);
    this.webSocketUrl = this.stage.url;
    this.connectionsEndpoint = this.stage.callbackUrl;

    this.table.grant(this.routesFunction, ...ROUTES_TABLE_ACTIONS);
    // Scoped to this API and stage: `grantManageConnections` on the API would allow every stage.
    this.stage.grantManagementApiAccess(this.routesFunction);
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

  private createFunction(
    id: string,
    handler: WsHandlerName,
    options: { timeout: Duration; environment: Record<string, string> },
  ): NodejsFunction {
    const logGroup = this.createLogGroup(`${id}Logs`);
    return new NodejsFunction(this, id, {
      entry: handlerEntry(handler),
      handler: 'handler',
      projectRoot: repoFile(''),
      depsLockFilePath: repoFile('package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: 256,
      timeout: options.timeout,
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
  }

  private addRoutes(): void {
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
    // No identity source: API Gateway would answer 401 itself when the named source is missing, but the
    // token may come in the query string or in the Authorization header, and only the authorizer can tell
    // "no token" (401) from "bad token" (403). No source also means no authorizer result caching, which is
    // right for a once-per-connection call.
    const authorizer = new WebSocketLambdaAuthorizer('ConnectAuthorizer', this.authorizerFunction, {
      identitySource: [],
    });

    for (const route of WS_ROUTES) {
      this.webSocketApi.addRoute(route.routeKey, {
        integration: integrationFor(route.handler),
        returnResponse: route.returnResponse,
        ...(route.authorized ? { authorizer } : {}),
      });
    }
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
    if (this.settings.createApiGatewayLogRole) {
      stage.node.addDependency(this.createApiGatewayAccountLogRole());
    }
    return stage;
  }

  private createApiGatewayAccountLogRole(): CfnAccount {
    const role = new Role(this, 'ApiGatewayLogRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    const account = new CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.node.addDependency(role);
    return account;
  }
}

function resolveSettings(props: RealtimeProps): Settings {
  return {
    tokenUse: props.tokenUse ? [...new Set(props.tokenUse)] : DEFAULTS.tokenUse,
    stageName: props.stageName ?? DEFAULTS.stageName,
    removalPolicy: props.removalPolicy ?? DEFAULTS.removalPolicy,
    logLevel: props.logLevel ?? DEFAULTS.logLevel,
    logRetention: props.logRetention ?? DEFAULTS.logRetention,
    throttle: props.throttle ?? DEFAULTS.throttle,
    accessLogs: props.accessLogs ?? DEFAULTS.accessLogs,
    createApiGatewayLogRole: props.createApiGatewayLogRole ?? DEFAULTS.createApiGatewayLogRole,
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

function pascalCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, _dash, letter: string) => letter.toUpperCase());
}
