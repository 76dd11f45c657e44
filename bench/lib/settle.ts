/**
 * Waiting for background work to die down before a measured phase: setup can leave work running that no
 * promise exposes (an emulator's lifecycle rules invoking Lambdas after each connect, their DynamoDB calls),
 * which would otherwise be billed to the first measurement.
 */

/** Options of {@link waitForQuietCpu}. */
export interface QuietCpuOptions {
  /** Length of one sampling window, ms. @default 200 */
  windowMs?: number;
  /** The process counts as quiet when its CPU time over a window is below this fraction of it. @default 0.05 */
  busyBelow?: number;
  /** Consecutive quiet windows needed. @default 2 */
  windows?: number;
  /** Gives up (resolving false) after this long, ms. @default 30000 */
  timeoutMs?: number;
}

/**
 * Resolves true once this process has used less than `busyBelow` of one core for `windows` consecutive
 * windows of `windowMs`, or false when `timeoutMs` passed first (the caller decides whether that matters).
 */
export async function waitForQuietCpu(options: QuietCpuOptions = {}): Promise<boolean> {
  const windowMs = options.windowMs ?? 200;
  const busyBelow = options.busyBelow ?? 0.05;
  const needed = options.windows ?? 2;
  const deadline = performance.now() + (options.timeoutMs ?? 30_000);
  let quiet = 0;
  while (performance.now() < deadline) {
    const start = process.cpuUsage();
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const { user, system } = process.cpuUsage(start);
    const busy = (user + system) / 1000 / (performance.now() - started);
    quiet = busy < busyBelow ? quiet + 1 : 0;
    if (quiet >= needed) return true;
  }
  return false;
}
