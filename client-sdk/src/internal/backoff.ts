/** Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff and Jitter"): spreads the
 * reconnects of many clients after an outage instead of having them return in waves. */
export function fullJitterDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
