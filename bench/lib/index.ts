/**
 * Shared helpers for the benchmarks in `bench/`:
 * - `parseBenchArgs()` / `intFlag()`: `--quick`, `--only`, `--no-write` and per-benchmark flags;
 * - `percentiles(values)` / `ratio(a, b)`: nearest-rank p50/p90/p99, min/mean/max;
 * - `printTable(rows)` / `formatTable` / `formatNumber`: aligned stdout tables;
 * - `writeResult(name, data)`: `bench/results/<name>-<timestamp>.json` with `machineInfo()`;
 * - `cpuStopwatch()`, `memorySample()`, `forceGc()`, `startCpuProfile()`, `withDeadline()`, `forEachLimit()`;
 * - `waitForQuietCpu()`: waits for background work left by setup to die down before a measured phase.
 * @example
 * import { parseBenchArgs, percentiles, printTable, writeResult } from './lib/index.js';
 */
export * from './args.js';
export * from './process.js';
export * from './result.js';
export * from './settle.js';
export * from './stats.js';
export * from './table.js';
