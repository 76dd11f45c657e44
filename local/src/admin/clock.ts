/**
 * The emulator's clock when the console is on: its source (the system clock, or a test's) plus an offset that
 * only grows. Moving it forward lets a developer watch tokens expire, TTLs lapse and API Gateway's 2-hour cut
 * happen without waiting.
 */
import { type Clock, systemClock } from '../time.js';

/** A {@link Clock} that can be moved forward. */
export interface AdjustableClock extends Clock {
  /** How far ahead of its source the clock runs, ms. */
  readonly offsetMs: number;
  /**
   * Moves the clock forward by `ms` and returns the new time.
   * @throws {RangeError} `ms` is not a finite number >= 0: moving back would make tokens minted since then
   *   carry an `iat` in the future, which the verifier refuses.
   */
  advance(ms: number): number;
}

/**
 * Creates an adjustable clock over `source`.
 * @example
 * const clock = createAdjustableClock();
 * clock.advance(2 * 60 * 60 * 1000); // two hours later, for everything that reads `clock()`
 */
export function createAdjustableClock(source: Clock = systemClock): AdjustableClock {
  let offsetMs = 0;
  const clock = (() => source() + offsetMs) as AdjustableClock;
  Object.defineProperty(clock, 'offsetMs', { get: () => offsetMs, enumerable: true });
  clock.advance = (ms: number) => {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
      throw new RangeError(`The clock only moves forward: give a number of ms >= 0, got ${String(ms)}.`);
    offsetMs += Math.round(ms);
    return clock();
  };
  return clock;
}

/** Whether a clock is an {@link AdjustableClock}. */
export function isAdjustableClock(clock: Clock): clock is AdjustableClock {
  return typeof (clock as Partial<AdjustableClock>).advance === 'function';
}
