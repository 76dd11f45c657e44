/**
 * JSON result files: one per benchmark run, in `bench/results/` (gitignored), with the machine it ran on.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where {@link writeResult} writes: `<repo>/bench/results`. */
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** The machine and runtime a result was measured on. */
export interface MachineInfo {
  node: string;
  platform: string;
  arch: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  };
}

/**
 * Writes `{ name, date, machine, ...data }` as pretty JSON to `bench/results/<name>-<timestamp>.json`
 * (timestamp: ISO 8601 UTC with `:` and `.` replaced by `-`) and returns the file's path.
 * NaN and ±Infinity become `null` (JSON has neither).
 */
export function writeResult(name: string, data: Record<string, unknown>, dir: string = RESULTS_DIR): string {
  const date = new Date();
  const file = join(dir, `${name}-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dir, { recursive: true });
  const body = { name, date: date.toISOString(), machine: machineInfo(), ...data };
  writeFileSync(
    file,
    `${JSON.stringify(body, (_key, value) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`,
  );
  return file;
}
