/**
 * EventBridge's scheduled rules, emulated: each entry of the contract's `SCHEDULES` invokes its function every
 * `rateMinutes` on the emulator's clock, with the event EventBridge sends (`detail-type: Scheduled Event`).
 *
 * Time is the emulator's clock, so when the console moves it forward, {@link LocalScheduler.runDue} runs what
 * became due: once per schedule, not once per period skipped (the scheduled functions are idempotent sweeps, so
 * one late run does what the skipped ones would have). Runs of one schedule never overlap; a run that fails is
 * logged, as EventBridge's asynchronous invocation would, and the next period runs again.
 */
import { randomUUID } from 'node:crypto';
import type { Context, ScheduledEvent } from 'aws-lambda';
import type { FunctionName } from '../faults/rules.js';
import type { EmulatorLogger } from '../log.js';
import type { Clock } from '../time.js';

/** A scheduled function as the scheduler calls it. */
export type ScheduledFunction = (event: ScheduledEvent, context?: Context) => Promise<unknown>;

/** One rule: which function, how often. */
export interface LocalSchedule {
  handler: FunctionName;
  rateMinutes: number;
  fn: ScheduledFunction;
  /** What a run's answer is worth an `info` line for (undefined: a `debug` line only). */
  describe?: (answer: unknown) => string | undefined;
}

/** Options of {@link LocalScheduler}. */
export interface LocalSchedulerOptions {
  schedules: readonly LocalSchedule[];
  clock: Clock;
  logger: EmulatorLogger;
  region: string;
  accountId: string;
  /** Run only when asked (`run`), never by the timer or `runDue`. @default false */
  paused?: boolean;
}

/** Asked to run a function no schedule invokes. */
export class UnknownScheduleError extends Error {
  override readonly name = 'UnknownScheduleError';
  constructor(readonly handler: string) {
    super(`No schedule invokes "${handler}".`);
  }
}

interface ScheduleState {
  readonly schedule: LocalSchedule;
  readonly periodMs: number;
  /** Emulator-clock time of the next run. */
  nextAt: number;
  /** The last run started or queued behind the one in progress (runs of one schedule are chained). */
  tail: Promise<unknown>;
  /** Runs started or queued and not finished. */
  pending: number;
  runs: number;
}

/** Runs the scheduled functions (see the module's description). Starts on construction; `close()` stops it. */
export class LocalScheduler {
  readonly #options: LocalSchedulerOptions;
  readonly #states: ScheduleState[];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: LocalSchedulerOptions) {
    this.#options = options;
    const now = options.clock();
    this.#states = options.schedules.map((schedule) => {
      const periodMs = schedule.rateMinutes * 60_000;
      if (!Number.isFinite(periodMs) || periodMs <= 0)
        throw new RangeError(
          `rateMinutes of ${schedule.handler} must be a positive number, got ${schedule.rateMinutes}.`,
        );
      return { schedule, periodMs, nextAt: now + periodMs, tail: Promise.resolve(), pending: 0, runs: 0 };
    });
    this.#arm();
  }

  /** How many runs each schedule has started (tests). */
  runs(handler: FunctionName): number {
    return this.#state(handler).runs;
  }

  /**
   * Invokes `handler`'s function now, as its rule would (after the run in progress, if any: runs of one schedule
   * never overlap), and returns what it answered. A failure is thrown to the caller (and logged).
   * @throws {UnknownScheduleError} no schedule invokes `handler`
   */
  async run(handler: FunctionName): Promise<unknown> {
    return this.#enqueue(this.#state(handler));
  }

  /**
   * Runs every schedule whose time has come by the clock (after the console moved it), waits for them, and
   * returns what each that succeeded answered. A schedule with a run in progress gets one more run after it: the
   * run in progress may have read the time before the clock moved.
   */
  async runDue(): Promise<Partial<Record<FunctionName, unknown>>> {
    const answers: Partial<Record<FunctionName, unknown>> = {};
    if (this.#closed || this.#options.paused === true) return answers;
    const now = this.#options.clock();
    // At most one run waits behind the one in progress: more would all see the same time.
    const due = this.#states.filter((state) => state.nextAt <= now && state.pending <= 1);
    await Promise.all(
      due.map(async (state) => {
        try {
          answers[state.schedule.handler] = await this.#enqueue(state);
        } catch {
          // Logged by the run; the next period runs again.
        }
      }),
    );
    this.#arm();
    return answers;
  }

  /** Waits for the runs in progress and queued. */
  async idle(): Promise<void> {
    await Promise.all(this.#states.map((state) => state.tail.catch(() => undefined)));
  }

  /** Stops the timer and waits for the runs in progress (so they finish against live endpoints). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.idle();
  }

  #state(handler: string): ScheduleState {
    const state = this.#states.find((s) => s.schedule.handler === handler);
    if (!state) throw new UnknownScheduleError(handler);
    return state;
  }

  /** Starts a run after the schedule's previous one ends. */
  #enqueue(state: ScheduleState): Promise<unknown> {
    state.pending += 1;
    const run = state.tail
      .catch(() => undefined)
      .then(() => this.#invoke(state))
      .finally(() => {
        state.pending -= 1;
        // The timer skipped this schedule while it ran.
        this.#arm();
      });
    state.tail = run;
    return run;
  }

  async #invoke(state: ScheduleState): Promise<unknown> {
    const { clock, logger } = this.#options;
    const now = clock();
    // The next run is a period after this one: a late run does not make the next one come sooner.
    state.nextAt = now + state.periodMs;
    state.runs += 1;
    const name = state.schedule.handler;
    try {
      const answer = await state.schedule.fn(this.#event(name, now));
      const said = state.schedule.describe?.(answer);
      if (said !== undefined) logger.line('info', 'SCHEDULE', `${name}: ${said}`);
      else logger.line('debug', 'SCHEDULE', `${name} ran: ${JSON.stringify(answer) ?? 'no answer'}`);
      return answer;
    } catch (error) {
      logger.line(
        'warn',
        'SCHEDULE',
        `${name} failed: ${error instanceof Error ? error.message : String(error)}; the next run is in ${state.schedule.rateMinutes} min`,
      );
      throw error;
    }
  }

  /** The event EventBridge sends a scheduled rule's target. */
  #event(handler: string, now: number): ScheduledEvent {
    const { region, accountId } = this.#options;
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: accountId,
      // EventBridge stamps the scheduled time to the second.
      time: new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
      region,
      resources: [`arn:aws:events:${region}:${accountId}:rule/viba-realtime-${handler}`],
      detail: {},
    };
  }

  /**
   * Sets the timer to the earliest next run of a schedule that is not running (real time: the clock may run ahead
   * of it, never behind). A running one is left out, or a run longer than its period would fire the timer at once
   * again and again; it re-arms when it ends.
   */
  #arm(): void {
    if (this.#closed || this.#options.paused === true) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = Math.min(...this.#states.filter((state) => state.pending === 0).map((state) => state.nextAt));
    if (!Number.isFinite(next)) return;
    this.#timer = setTimeout(() => void this.runDue(), Math.max(0, next - this.#options.clock()));
    // A pending sweep must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }
}
