/**
 * Runs `task` over `items` with at most `limit` in flight. Results keep the input order. A rejected task
 * does not stop the others; callers get every outcome.
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = { status: 'fulfilled', value: await task(items[index] as T, index) };
      } catch (reason) {
        results[index] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff and Jitter"). */
export function fullJitterDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random) {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}
