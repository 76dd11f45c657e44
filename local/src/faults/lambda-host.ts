/**
 * How the emulator invokes the Lambdas when fault injection is on: as AWS Lambda does, with each function's
 * timeout (the CDK stack's) and `handler` faults, and, for IoT rules, Lambda's retries of a failed asynchronous
 * invocation. What the caller then does is its own emulation's: API Gateway answers the WebSocket client
 * `Endpoint request timed out` or `Internal server error`, the SQS event source makes the message visible again
 * after its visibility timeout, IoT's rules engine logs the final failure.
 *
 * - `error`: the invocation fails before the handler runs (a crash at start, out of memory): nothing happened.
 * - `timeout`: the handler runs, but the invocation ends past its timeout, so its answer is lost: its writes and
 *   posts happened, its caller sees a timeout. This is what a retry must not repeat.
 * - without a `handler` fault, an invocation still running at its timeout is reported timed out then. The handler
 *   cannot be killed (it shares the emulator's process). Held by a `timeout` fault of a service it called, it
 *   stays held, as that request is never answered (until the emulator closes), so it does nothing more, like a
 *   Lambda frozen at its timeout; a handler that is merely slow runs on.
 */
import { mqttConnectionId } from '@viba-realtime/lambdas';
import { FUNCTION_TIMEOUTS_MS as PROTOCOL_FUNCTION_TIMEOUTS_MS, WS_HANDLERS } from '@viba-realtime/protocol';
import type { Context } from 'aws-lambda';
import { buildLambdaContext } from '../gateway/events.js';
import type { EmulatorLogger } from '../log.js';
import type { FaultHook } from './injector.js';
import type { FunctionName, HandlerInvocation } from './rules.js';

/** Each function's timeout as the CDK stack sets it: the contract's table. */
export const FUNCTION_TIMEOUTS_MS: Readonly<Record<FunctionName, number>> = PROTOCOL_FUNCTION_TIMEOUTS_MS;

/**
 * Waits before Lambda's two retries of a failed asynchronous invocation (how IoT invokes rule Lambdas; the stack
 * keeps Lambda's default of 2 retries). AWS waits about 1 and then 2 minutes; the emulator, these milliseconds.
 */
export const ASYNC_RETRY_DELAYS_MS: readonly number[] = [100, 200];

/** An invocation that ran past its function's timeout; the message is Lambda's. */
export class FunctionTimeoutError extends Error {
  override readonly name = 'FunctionTimeoutError';
  constructor(
    readonly functionName: FunctionName,
    readonly timeoutMs: number,
  ) {
    super(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
  }
}

/** An invocation failed by a `handler` fault of kind `error`. */
export class InjectedFunctionError extends Error {
  override readonly name = 'InjectedFunctionError';
  constructor(
    readonly functionName: FunctionName,
    readonly ruleFault = 'error',
  ) {
    super(`${functionName}: the invocation failed before the handler ran (injected fault)`);
  }
}

/** A Lambda entry point as the emulator calls it. */
export type LambdaFunction<E, R> = (event: E, context?: Context) => Promise<R>;

/** Options of {@link LambdaHost}. */
export interface LambdaHostOptions {
  /** Decides the `handler` faults. */
  faults: FaultHook<'handler'>;
  /** Overrides of {@link FUNCTION_TIMEOUTS_MS} (tests). */
  timeoutsMs?: Partial<Record<FunctionName, number>>;
  /** @default ASYNC_RETRY_DELAYS_MS */
  asyncRetryDelaysMs?: readonly number[];
  region: string;
  accountId: string;
  logger: EmulatorLogger;
}

/** Wraps Lambda entry points so their invocations behave as described in the module's comment. */
export class LambdaHost {
  readonly timeoutsMs: Readonly<Record<FunctionName, number>>;
  readonly #faults: FaultHook<'handler'>;
  readonly #retryDelays: readonly number[];
  readonly #options: LambdaHostOptions;

  constructor(options: LambdaHostOptions) {
    this.#options = options;
    this.#faults = options.faults;
    this.timeoutsMs = Object.freeze({ ...FUNCTION_TIMEOUTS_MS, ...options.timeoutsMs });
    this.#retryDelays = options.asyncRetryDelaysMs ?? ASYNC_RETRY_DELAYS_MS;
  }

  /** A synchronously invoked function (API Gateway, IoT's authorizer, the SQS event source). */
  wrap<E, R>(name: FunctionName, fn: LambdaFunction<E, R>): LambdaFunction<E, R> {
    return (event, context) => this.#invoke(name, fn, event, context);
  }

  /** An asynchronously invoked function (an IoT rule's): a failed invocation is retried with the same event. */
  wrapAsync<E, R>(name: FunctionName, fn: LambdaFunction<E, R>): LambdaFunction<E, R> {
    return async (event, context) => {
      for (let retry = 0; ; retry++) {
        try {
          return await this.#invoke(name, fn, event, context);
        } catch (error) {
          const delay = this.#retryDelays[retry];
          if (delay === undefined) throw error;
          this.#options.logger.line(
            'warn',
            'LAMBDA',
            `${name} failed (${error instanceof Error ? error.message : String(error)}); asynchronous retry ${retry + 1}/${this.#retryDelays.length} in ${delay}ms`,
          );
          await new Promise((resolve) => setTimeout(resolve, delay).unref());
        }
      }
    };
  }

  async #invoke<E, R>(name: FunctionName, fn: LambdaFunction<E, R>, event: E, context?: Context): Promise<R> {
    const fault = this.#faults.armed() ? this.#faults.decide(invocationOf(name, event)) : undefined;
    if (fault === 'error') throw new InjectedFunctionError(name);
    const timeoutMs = this.timeoutsMs[name];
    const started = Date.now();
    const base =
      context ??
      buildLambdaContext(
        `viba-${name}`,
        { apiId: '', stage: '', region: this.#options.region, accountId: this.#options.accountId },
        timeoutMs,
      );
    const run = fn(event, { ...base, getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)) });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    const timedOut = () => {
      const error = new FunctionTimeoutError(name, timeoutMs);
      this.#options.logger.line('error', 'LAMBDA', `${name} ${error.message}`);
      return error;
    };
    try {
      if (fault === 'timeout') {
        // Waited for, so its writes and posts are all made before the caller learns it timed out.
        await Promise.race([run.then(noop, noop), deadline]);
        throw timedOut();
      }
      const outcome = await Promise.race([run.then((value) => ({ value })), deadline]);
      if (outcome === 'timeout') {
        run.catch(noop);
        throw timedOut();
      }
      return outcome.value;
    } finally {
      clearTimeout(timer);
    }
  }
}

function noop(): void {}

/** What a `handler` rule can match of an invocation: its route and its caller's connection. */
function invocationOf(handler: FunctionName, event: unknown): HandlerInvocation {
  const e = event as { requestContext?: { routeKey?: unknown; connectionId?: unknown }; clientId?: unknown } | null;
  const routeKey = e?.requestContext?.routeKey;
  const connectionId = e?.requestContext?.connectionId;
  const invocation: HandlerInvocation = { handler };
  if (handler === WS_HANDLERS.routes && typeof routeKey === 'string') invocation.route = routeKey;
  if (typeof connectionId === 'string') invocation.connectionId = connectionId;
  else if (typeof e?.clientId === 'string' && e.clientId !== '') invocation.connectionId = mqttConnectionId(e.clientId);
  return invocation;
}
