/**
 * The service's Lambda functions, by the names of their handler files, and the timeout of each: the CDK stack
 * (infra) sets them and the emulator's fault injection (local) enforces them, from this one table.
 */
import { ENV, type EnvName } from './env.js';
import { IOT_HANDLERS } from './iot-rules.js';
import { APIGW_LIMITS, LIMITS } from './limits.js';
import { WS_HANDLERS } from './routes.js';

/** The worker that drains the fan-out queue (SQS event source). */
export const FANOUT_WORKER_HANDLER = 'fanout-worker';

/**
 * The scheduled function that closes WebSocket connections whose token has expired. API Gateway keeps an idle
 * connection open past its token (until its 10-minute idle timeout or 2-hour cut); this closes it within one
 * {@link SCHEDULES} period of `exp`.
 */
export const TOKEN_SWEEPER_HANDLER = 'token-sweeper';

/**
 * Functions run on a schedule (EventBridge `rate(...)` in AWS, a timer on the emulator's clock locally), with
 * their period in minutes. The stack creates one rule per entry; the emulator runs the same table.
 */
export const SCHEDULES = [{ handler: TOKEN_SWEEPER_HANDLER, rateMinutes: 1 }] as const;

/** Each function's timeout in milliseconds. */
export const FUNCTION_TIMEOUTS_MS = {
  // A token check against a cached JWKS takes milliseconds; 10 s covers a cold JWKS fetch.
  [WS_HANDLERS.authorizer]: 10_000,
  // API Gateway gives up on an integration after 29 s; a longer timeout would only bill for work whose answer
  // nobody receives. The send path's claim takeover (LIMITS.dedupeClaimStaleMs) relies on it.
  [WS_HANDLERS.routes]: APIGW_LIMITS.integrationTimeoutMs,
  // IoT Core's limit for a custom authorizer.
  [IOT_HANDLERS.authorizer]: 5_000,
  // The rule functions run the same requests as the routes function, with the same bound.
  [IOT_HANDLERS.ingress]: APIGW_LIMITS.integrationTimeoutMs,
  [IOT_HANDLERS.presence]: APIGW_LIMITS.integrationTimeoutMs,
  // Half the batch claim's stale time, so a stale claim is always one whose worker is over.
  [FANOUT_WORKER_HANDLER]: LIMITS.fanoutClaimStaleMs / 2,
  // A run closes at most LIMITS.tokenSweepMaxPerRun connections; the rest wait for the next minute's run.
  [TOKEN_SWEEPER_HANDLER]: 60_000,
} as const;

/**
 * The environment variables the stack sets on each function (with the MQTT channel; without it, none gets
 * `VIBA_IOT_ENDPOINT`). The emulator gives each function only these, plus its endpoint overrides
 * ({@link EMULATOR_ENV_OVERRIDES}), so no handler can come to depend locally on a setting AWS does not give it
 * (infra/test/contract.test.ts checks the template against this table).
 */
export const FUNCTION_ENV = {
  // The authorizer reads the token only: no table, no delivery.
  [WS_HANDLERS.authorizer]: [ENV.userPoolId, ENV.clientIds, ENV.tokenUse, ENV.logLevel],
  // Its `@connections` endpoint comes from each event (domain and stage).
  [WS_HANDLERS.routes]: [ENV.tableName, ENV.iotEndpoint, ENV.fanoutQueueUrl, ENV.logLevel],
  [IOT_HANDLERS.authorizer]: [
    ENV.tableName,
    ENV.userPoolId,
    ENV.clientIds,
    ENV.tokenUse,
    ENV.iotAccountId,
    ENV.logLevel,
  ],
  [IOT_HANDLERS.ingress]: [ENV.tableName, ENV.iotEndpoint, ENV.connectionsEndpoint, ENV.fanoutQueueUrl, ENV.logLevel],
  // Presence fan-outs from lifecycle events are delivered inline (the rule Lambda is asynchronous, unhurried).
  [IOT_HANDLERS.presence]: [ENV.tableName, ENV.iotEndpoint, ENV.connectionsEndpoint, ENV.logLevel],
  [FANOUT_WORKER_HANDLER]: [ENV.tableName, ENV.iotEndpoint, ENV.connectionsEndpoint, ENV.fanoutQueueUrl, ENV.logLevel],
  // It reaches WebSocket connections only.
  [TOKEN_SWEEPER_HANDLER]: [ENV.tableName, ENV.connectionsEndpoint, ENV.logLevel],
} as const satisfies Record<keyof typeof FUNCTION_TIMEOUTS_MS, readonly EnvName[]>;

/**
 * What only the emulator sets, on every function: where its own DynamoDB, SQS, JWKS and `@connections` are. In
 * AWS the SDK's regional endpoints, Cognito's JWKS and the API Gateway event say it.
 */
export const EMULATOR_ENV_OVERRIDES = [
  ENV.dynamodbEndpoint,
  ENV.sqsEndpoint,
  ENV.jwksUri,
  ENV.connectionsEndpoint,
] as const satisfies readonly EnvName[];
