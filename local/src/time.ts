/**
 * Time helpers of the emulator. Time is injected everywhere as a {@link Clock} so tests can move it.
 */

// One Clock for the whole project: the core's.
export { type Clock, systemClock } from '@viba-realtime/lambdas';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

function pad(value: number, width = 2): string {
  return value.toString().padStart(width, '0');
}

/**
 * Formats a time as API Gateway's `requestTime` (CLF, always UTC), e.g. `25/Nov/2026:16:40:01 +0000`.
 */
export function formatRequestTime(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(
    d.getUTCMinutes(),
  )}:${pad(d.getUTCSeconds())} +0000`;
}

/** `HH:MM:SS.mmm` in local time, the prefix of every emulator log line. */
export function formatLogTime(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
