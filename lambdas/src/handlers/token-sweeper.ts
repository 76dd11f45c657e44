/**
 * The token sweeper: an EventBridge schedule (`SCHEDULES` in the protocol: every minute) runs it to close the
 * WebSocket connections whose token has expired (see `core/token-sweep.ts`). Its answer is the sweep's counts,
 * which the Lambda console and the emulator's log show; a run that cannot read the store throws, so the errors
 * alarm sees it, and the next run starts over.
 */
import { TOKEN_SWEEPER_HANDLER } from '@viba-realtime/protocol';
import type { Context, ScheduledEvent } from 'aws-lambda';
import type { CoreDeps } from '../core/deps.js';
import type { Clock } from '../core/ports.js';
import { type SweepOutcome, sweepExpiredTokens } from '../core/token-sweep.js';
import type { HandlerEnv } from './events.js';
import { createRuntime } from './iot-runtime.js';

/** Builds the sweeper from an environment (the table and `VIBA_CONNECTIONS_ENDPOINT`). The emulator may inject
 * a clock. */
export function createTokenSweeperHandler(env: HandlerEnv, deps: { clock?: Clock } = {}) {
  const { store, delivery, clock, log } = createRuntime(env, TOKEN_SWEEPER_HANDLER, deps);
  return async (event: ScheduledEvent | undefined, _context?: Context): Promise<SweepOutcome> => {
    const core: CoreDeps = { store, delivery, clock, log: log.child({ scheduledAt: event?.time }) };
    return sweepExpiredTokens(core);
  };
}

let cached: ReturnType<typeof createTokenSweeperHandler> | undefined;

/** The Lambda entry point. Configuration is read once per execution environment, on first use. */
export const handler = (event: ScheduledEvent, context?: Context): Promise<SweepOutcome> => {
  cached ??= createTokenSweeperHandler(process.env);
  return cached(event, context);
};
