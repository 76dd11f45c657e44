/**
 * Process-level measurements (CPU, memory) and deadlines. The load generator runs in the same process as
 * the server under test, so CPU figures cover both; benchmarks say so in their output.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFunction: (() => void) | undefined;

/** Runs a full garbage collection (enabling `--expose-gc` at runtime the first time), so memory deltas
 * measure live objects rather than garbage. */
export function forceGc(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

/** Bytes of heap in use and resident set size, after a full GC. */
export function memorySample(): { heapUsed: number; rss: number } {
  forceGc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

/** Starts a CPU stopwatch; the returned function gives user + system CPU-seconds of this process since. */
export function cpuStopwatch(): () => number {
  const start = process.cpuUsage();
  return () => {
    const { user, system } = process.cpuUsage(start);
    return (user + system) / 1e6;
  };
}

/** Thrown by {@link withDeadline}. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/**
 * Resolves or rejects as `promise` does, or rejects with {@link DeadlineError} after `ms` (the timer never
 * keeps the process alive on its own). Benchmarks guard every wait with one so CI cannot hang.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: not done after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `task` over `items` with at most `limit` in flight; rejects with the first failure. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * Starts the V8 CPU profiler on this thread (through `node:inspector`, so only the interval of interest is
 * profiled, not setup). The returned function stops it and writes the profile (open it in Chrome DevTools
 * or speedscope) to `file`, returning the path.
 */
export async function startCpuProfile(): Promise<(file: string) => Promise<string>> {
  const { Session } = await import('node:inspector/promises');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  return async (file) => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(profile));
    return file;
  };
}

/**
 * Runs `main` when the module at `moduleUrl` (its `import.meta.url`) is the script node was started with — not
 * when `bench/run.ts` or a test imports it — and makes a false result or a throw the exit code 1. The entry is
 * resolved through symlinks, as `npx tsx` may hand a linked path.
 */
export function runAsScript(moduleUrl: string, main: () => Promise<boolean>): void {
  const entry = process.argv[1];
  if (entry === undefined) return;
  let entryUrl: string;
  try {
    entryUrl = pathToFileURL(realpathSync(entry)).href;
  } catch {
    return;
  }
  if (entryUrl !== moduleUrl) return;
  // The AWS SDK's "Node 22 needed from 2027" notice is noise in a report.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  main().then(
    (ok) => {
      if (!ok) process.exitCode = 1;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
