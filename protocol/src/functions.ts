/**
 * The service's Lambda functions, by the names of their handler files, and the timeout of each: the CDK stack
 * (infra) sets them and the emulator's fault injection (local) enforces them, from this one table.
 */
import { IOT_HANDLERS } from './iot-rules.js';
import { APIGW_LIMITS, LIMITS } from './limits.js';
import { WS_HANDLERS } from './routes.js';

/** The worker that drains the fan-out queue (SQS event source). */
export const FANOUT_WORKER_HANDLER = 'fanout-worker';

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
} as const;
