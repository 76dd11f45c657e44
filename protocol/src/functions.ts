/**
 * The service's Lambda functions, by the names of their handler files, and the timeout of each: the CDK stack
 * (infra) sets them and the emulator's fault injection (local) enforces them, from this one table.
 */
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
