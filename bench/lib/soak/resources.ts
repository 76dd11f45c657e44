/**
 * The emulator's active resources (what `process.getActiveResourcesInfo()` counts: sockets, servers, timers) against
 * its warm baseline: is everything the clients brought gone once they closed?
 */
import type { EmulatorProcess, EmulatorSample } from './emulator-process.js';

const HANDLE_POLL_MS = 250;
const HANDLE_SETTLE_MS = 30_000;
/** Node's HTTP servers close a keep-alive socket idle this long (`keepAliveTimeout`); the handlers' SDK
 * clients hold such sockets to the emulator's own servers after every burst of requests. */
const KEEP_ALIVE_MS = 5_000;
/** The resource counts must then stay unchanged this long to count as steady. */
const STEADY_MS = 1_500;
/** Sockets an idle emulator holds: the TTL sweeper's keep-alive connection to its own DynamoDB server, both
 * ends (it scans every 5 s, so its socket never idles out). */
const IDLE_SOCKETS = 2;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resource types whose count is above the baseline's. */
export function extraResources(now: Record<string, number>, baseline: Record<string, number>): Record<string, number> {
  const extra: Record<string, number> = {};
  for (const [type, count] of Object.entries(now))
    if (count > (baseline[type] ?? 0)) extra[type] = count - (baseline[type] ?? 0);
  return extra;
}

/**
 * Waits, after the emulator settled, until its active resources are where they should be: with `target`, at or
 * below it for every type; without, steady: unchanged for {@link STEADY_MS} with no sockets but the idle ones
 * ({@link IDLE_SOCKETS}), or else unchanged for longer than the keep-alive timeout (whatever the emulator keeps
 * open beyond that stays). Gives up after {@link HANDLE_SETTLE_MS} and returns the last sample either way. There is
 * no event for "a keep-alive socket timed out", so this polls.
 */
export async function steadyResources(
  emulator: EmulatorProcess,
  record: (sample: EmulatorSample) => void,
  target: Record<string, number> | undefined,
): Promise<EmulatorSample> {
  const started = performance.now();
  const deadline = started + HANDLE_SETTLE_MS;
  let key = '';
  let since = started;
  for (;;) {
    const sample = await emulator.sample({ gc: false });
    record(sample);
    const at = performance.now();
    if (target && Object.keys(extraResources(sample.resources, target)).length === 0) return sample;
    const now = JSON.stringify(Object.entries(sample.resources).sort());
    if (now !== key) {
      key = now;
      since = at;
    }
    const idle = (sample.resources.TCPSocketWrap ?? 0) <= IDLE_SOCKETS;
    if (!target && ((idle && at - since >= STEADY_MS) || at - since > KEEP_ALIVE_MS + STEADY_MS)) return sample;
    if (at > deadline) return sample;
    await delay(HANDLE_POLL_MS);
  }
}
