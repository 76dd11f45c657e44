/**
 * Runs the registered benchmarks in order: `npm run bench` (full sizes), `npm run bench -- --quick`
 * (short smoke run), `npm run bench -- --only ws-fanout` (a subset). Each benchmark prints its table and
 * writes `bench/results/<name>-<timestamp>.json`. The exit code is 1 if any benchmark failed to run or
 * reported incorrect results (lost or duplicated deliveries, ...), never because a machine is slow.
 *
 * To add a benchmark: export `main(args: BenchArgs): Promise<boolean>` from `bench/<name>.ts` (true when
 * its correctness checks passed) and add a line to BENCHMARKS.
 */
import { type BenchArgs, parseBenchArgs } from './lib/index.js';

/** A registered benchmark: its name (for `--only`) and a lazy import of its `main`. */
export interface RegisteredBenchmark {
  name: string;
  load: () => Promise<{ main: (args: BenchArgs) => Promise<boolean> }>;
}

export const BENCHMARKS: readonly RegisteredBenchmark[] = [
  { name: 'ws-fanout', load: () => import('./ws-fanout.js') },
  { name: 'mqtt-fanout', load: () => import('./mqtt-fanout.js') },
  { name: 'delivery-cost', load: () => import('./delivery-cost.js') },
  { name: 'cold-start', load: () => import('./cold-start.js') },
  { name: 'sdk-size', load: () => import('./sdk-size.js') },
  { name: 'cost', load: () => import('./cost.js') },
];

async function run(): Promise<number> {
  const args = parseBenchArgs();
  const unknown = args.only.filter((name) => !BENCHMARKS.some((b) => b.name === name));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(', ')} (registered: ${BENCHMARKS.map((b) => b.name).join(', ')})`);
    return 2;
  }
  const selected = BENCHMARKS.filter((b) => args.only.length === 0 || args.only.includes(b.name));
  const failed: string[] = [];
  for (const bench of selected) {
    const started = performance.now();
    console.log(`\n==> ${bench.name}${args.quick ? ' (quick)' : ''}`);
    try {
      const { main } = await bench.load();
      if (!(await main(args))) failed.push(bench.name);
    } catch (error) {
      console.error(`${bench.name} failed:`, error);
      failed.push(bench.name);
    }
    console.log(`<== ${bench.name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  if (failed.length > 0) console.error(`\nbenchmarks with failures: ${failed.join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

// The AWS SDK's "Node 22 needed from 2027" notice is noise in benchmark output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.exitCode = await run();
