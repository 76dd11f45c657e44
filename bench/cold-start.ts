/**
 * Cold start (issue 7, item 3): each Lambda handler bundled exactly as the CDK stack bundles it
 * (`infra/src/realtime.ts`, `createFunction`: NodejsFunction with ESM, node22, minify, source map without
 * sources content, the createRequire banner, the AWS SDK bundled), then its size (raw and gzipped) and the
 * time to `import()` it in a fresh Node process, median of several runs.
 *
 * The handlers read their configuration lazily (on first invoke, `cached ??= create...(process.env)`), so
 * importing needs no environment. Each import runs with `--enable-source-maps`, as the stack sets in
 * NODE_OPTIONS, and once more without it, to show what the source map costs.
 *
 * Run: `npx tsx bench/cold-start.ts [--quick] [--repeats 5] [--no-write]`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { FANOUT_WORKER_HANDLER, IOT_HANDLERS, TOKEN_SWEEPER_HANDLER, WS_HANDLERS } from '@viba-realtime/protocol';
import { build } from 'esbuild';
import { type BenchArgs, intFlag, parseBenchArgs, percentiles, printTable, writeResult } from './lib/index.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Every handler the stack deploys (`handlerEntry()` in infra/src/realtime.ts), from the contract's tables
 * (protocol, not infra: that would load aws-cdk-lib): the WebSocket and IoT handlers, the fan-out worker and the
 * scheduled token sweeper, seven in all.
 */
export const HANDLERS = [
  ...Object.values(WS_HANDLERS),
  ...Object.values(IOT_HANDLERS),
  FANOUT_WORKER_HANDLER,
  TOKEN_SWEEPER_HANDLER,
] as const;
/** The stack's `bundling.banner`, verbatim. */
const BANNER = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";
/** Target per handler. */
const TARGET_MS = 100;
/** One import must finish within this, or the run fails instead of hanging. */
const IMPORT_TIMEOUT_MS = 30_000;

export interface ColdStartOptions {
  /** Imports per handler and mode (median reported). @default 5 */
  repeats?: number;
}

export interface HandlerColdStart {
  handler: string;
  bundleBytes: number;
  bundleGzipBytes: number;
  sourceMapBytes: number;
  /** Median ms to import the bundle in a fresh process, with `--enable-source-maps` (as deployed). */
  importMs: number;
  /** The same without source maps. */
  importMsNoSourceMaps: number;
  samples: { withSourceMaps: number[]; withoutSourceMaps: number[] };
  /** importMs < TARGET_MS. */
  meetsTarget: boolean;
}

export interface ColdStartResult {
  node: string;
  repeats: number;
  targetMs: number;
  handlers: HandlerColdStart[];
}

/** Bundles one handler as CDK's NodejsFunction does with the stack's `bundling` options. */
async function bundle(handler: string, outdir: string): Promise<string> {
  const outfile = join(outdir, handler, 'index.mjs');
  await build({
    entryPoints: [join(REPO, 'lambdas', 'src', 'handlers', `${handler}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: { js: BANNER },
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    // bundleAwsSDK: true -> no externals (without it CDK would mark @aws-sdk/* external).
    external: [],
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

/** Milliseconds to import `file` in a fresh `node` process. */
function importOnce(file: string, sourceMaps: boolean): number {
  const script = [
    'const start = performance.now();',
    `const mod = await import(${JSON.stringify(pathToFileURL(file).href)});`,
    'const ms = performance.now() - start;',
    "if (typeof mod.handler !== 'function') throw new Error('no handler export');",
    'process.stdout.write(JSON.stringify({ ms }));',
  ].join('\n');
  const run = spawnSync(
    process.execPath,
    [...(sourceMaps ? ['--enable-source-maps'] : []), '--input-type=module', '-e', script],
    {
      cwd: tmpdir(),
      // Not the bench's own NODE_OPTIONS (tsx's loader would be timed too).
      env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      encoding: 'utf8',
      timeout: IMPORT_TIMEOUT_MS,
    },
  );
  if (run.status !== 0) throw new Error(`importing ${file} failed (${run.status}): ${run.stderr}`);
  return (JSON.parse(run.stdout) as { ms: number }).ms;
}

export async function runColdStart(options: ColdStartOptions = {}): Promise<ColdStartResult> {
  const repeats = options.repeats ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'viba-cold-start-'));
  try {
    const handlers: HandlerColdStart[] = [];
    for (const handler of HANDLERS) {
      const file = await bundle(handler, dir);
      const code = readFileSync(file);
      const withSourceMaps: number[] = [];
      const withoutSourceMaps: number[] = [];
      // Interleaved so that disk cache and machine noise hit both modes alike; one discarded first run
      // brings the file into the page cache, as Lambda's init does before it imports.
      importOnce(file, false);
      for (let i = 0; i < repeats; i++) {
        withSourceMaps.push(importOnce(file, true));
        withoutSourceMaps.push(importOnce(file, false));
      }
      const importMs = percentiles(withSourceMaps).p50;
      handlers.push({
        handler,
        bundleBytes: code.length,
        bundleGzipBytes: gzipSync(code, { level: 9 }).length,
        sourceMapBytes: statSync(`${file}.map`).size,
        importMs,
        importMsNoSourceMaps: percentiles(withoutSourceMaps).p50,
        samples: { withSourceMaps, withoutSourceMaps },
        meetsTarget: importMs < TARGET_MS,
      });
    }
    return { node: process.version, repeats, targetMs: TARGET_MS, handlers };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function printColdStart(result: ColdStartResult): void {
  printTable(
    result.handlers.map((h) => ({
      handler: h.handler,
      'bundle KB': h.bundleBytes / 1024,
      'gzip KB': h.bundleGzipBytes / 1024,
      'map KB': h.sourceMapBytes / 1024,
      'import ms (source maps, as deployed)': h.importMs,
      'import ms (no source maps)': h.importMsNoSourceMaps,
      [`< ${result.targetMs} ms`]: h.meetsTarget,
    })),
    { title: `Cold start: CDK-identical bundles, fresh node ${result.node} per import (median of ${result.repeats})` },
  );
}

/** CLI (and `bench/run.ts`): true when every handler bundled and imported.
 * `npx tsx bench/cold-start.ts [--quick] [--repeats N] [--no-write]`. */
export async function main(args: BenchArgs = parseBenchArgs()): Promise<boolean> {
  const result = await runColdStart({ repeats: intFlag(args, 'repeats', args.quick ? 3 : 5) });
  printColdStart(result);
  if (args.write) console.log(`result: ${writeResult('cold-start', { ...result })}`);
  // Bundling and importing worked (each import checks the `handler` export); the time target is reported.
  return result.handlers.length === HANDLERS.length;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) await main();
