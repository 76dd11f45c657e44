/**
 * Command-line flags shared by every benchmark: `npm run bench -- --quick --only ws-fanout --n 200`.
 */

/** Parsed flags. */
export interface BenchArgs {
  /** `--quick`: a short run that checks the benchmark works (CI smoke), not how fast the machine is. */
  quick: boolean;
  /** `--only a,b` (or repeated `--only a --only b`): run just these registered benchmarks. Empty: all. */
  only: string[];
  /** `--no-write`: print the table but write no JSON result file. */
  write: boolean;
  /** Every other `--name value` / `--name=value` / bare `--flag` (true), for a benchmark's own options. */
  flags: Record<string, string | true>;
}

/**
 * Parses benchmark flags (default: `process.argv.slice(2)`). Unknown flags are kept in `flags`, so each
 * benchmark reads its own with {@link intFlag}. Positional arguments are ignored.
 */
export function parseBenchArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const args: BenchArgs = { quick: false, only: [], write: true, flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    let value: string | true = eq < 0 ? true : arg.slice(eq + 1);
    const next = argv[i + 1];
    if (value === true && name !== 'quick' && name !== 'no-write' && next !== undefined && !next.startsWith('--')) {
      value = next;
      i++;
    }
    if (name === 'quick') args.quick = value === true || value === 'true';
    else if (name === 'no-write') args.write = false;
    else if (name === 'only' && typeof value === 'string') args.only.push(...value.split(',').filter(Boolean));
    else args.flags[name] = value;
  }
  return args;
}

/** A positive integer flag (`--n 500`), or `fallback` when absent. Throws on a value that is not one. */
export function intFlag(args: BenchArgs, name: string, fallback: number): number {
  const raw = args.flags[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new TypeError(`--${name} must be a positive integer, got "${raw}"`);
  return value;
}
