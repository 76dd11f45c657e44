/**
 * Client SDK size (issue 7): what a browser app ships when it uses `@viba-realtime/client`, minified and
 * compressed, next to a baseline measured in the same run.
 *
 * Method:
 * - the package is built as published (`client-sdk/build.ts`) into a temporary `node_modules`, so the apps
 *   resolve it through its real `exports` map (`import` condition, `dist/`), as an app's bundler would;
 * - each app is a few lines of code bundled by esbuild as a browser app: ESM, code splitting, minify,
 *   tree shaking, platform browser, the package's target (es2022); `mqtt`, `react` and `react-dom` external (the app has
 *   them anyway; MQTT.js is measured on its own, for context);
 * - a figure is the sum over the files the browser loads up front: the entry and the chunks it imports
 *   statically; the chunks behind a dynamic `import()` (the MQTT transport) are reported separately. Each
 *   file is compressed on its own (gzip level 9, brotli quality 11), as a server sends them.
 * - the floor: a hand-written WebSocket client doing the same join / send / receive with JSON frames
 *   and nothing else (no reconnect, resume, acks, queue or types), bundled the same way. It is the size of
 *   the job, not a competitor; no comparable SDK (Centrifuge, Pusher, Ably, ...) is installed in this
 *   repository, so their published sizes are not measured here.
 * - where the core's bytes come from: the same app bundled from the SDK's TypeScript source, minified bytes
 *   per source module (before compression).
 *
 * Target: the core under 8 KB gzipped. Reported, never a failure; the run fails only if a bundle cannot be
 * built or the core would load MQTT.js, React or the MQTT transport up front.
 *
 * Run: `npm run bench -- --only sdk-size [--no-write]` or `npx tsx bench/sdk-size.ts [--no-write]`
 * (`--quick` changes nothing: the whole run takes a few seconds).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brotliCompressSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import { build, type BuildOptions as EsbuildOptions, type Metafile } from 'esbuild';
import { PACKAGE_DIR, stagePackage, TARGET } from '../client-sdk/build.js';
import { type BenchArgs, parseBenchArgs, printTable, writeResult } from './lib/index.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The aim for the core, gzipped. */
export const TARGET_GZIP_BYTES = 8 * 1024;
/** Peer dependencies: an app has them anyway, and MQTT.js is measured on its own. */
const EXTERNAL = ['mqtt', 'react', 'react/*', 'react-dom', 'react-dom/*'];
/** Rows of the contributors table. */
const TOP_CONTRIBUTORS = 10;

const URL_LINE = "const url = 'wss://abc123.execute-api.eu-west-1.amazonaws.com/prod';";
const TOKEN_LINE = "const getToken = async () => (await fetch('/token')).text();";

/** The apps, each a module of a browser app. */
const APPS = {
  /** The floor: join, send and receive with JSON frames over a bare WebSocket. */
  floor: [
    URL_LINE,
    TOKEN_LINE,
    'export async function chat(room, onMessage) {',
    '  const token = await getToken();',
    "  const ws = new WebSocket(url + '?token=' + encodeURIComponent(token));",
    '  let n = 0;',
    '  const write = (frame) => ws.send(JSON.stringify(frame));',
    '  ws.onmessage = (event) => {',
    '    const frame = JSON.parse(event.data);',
    "    if (frame.type === 'chat' && frame.room === room) onMessage(frame);",
    '  };',
    '  await new Promise((resolve, reject) => {',
    '    ws.onopen = resolve;',
    '    ws.onerror = reject;',
    '  });',
    "  write({ action: 'join', room });",
    "  return { send: (body) => write({ action: 'send', room, id: 'm' + ++n, body }), close: () => ws.close() };",
    '}',
    "chat('lobby', (m) => console.log(m.from, m.body)).then((lobby) => lobby.send({ text: 'hi' }));",
  ],
  /** The same with the SDK's core (WebSocket transport). */
  core: [
    "import { createRealtimeClient } from '@viba-realtime/client';",
    URL_LINE,
    TOKEN_LINE,
    'const client = createRealtimeClient({ url, getToken });',
    "const room = client.join('lobby');",
    "room.on('message', (m) => console.log(m.from, m.body));",
    "room.send({ text: 'hi' }).then((result) => console.log(result));",
  ],
  /** Every export of the core kept (no tree shaking of the entry): the upper bound. */
  coreAll: ["export * from '@viba-realtime/client';"],
  /** The core app plus every React binding. */
  coreReact: [
    "import { createRealtimeClient } from '@viba-realtime/client';",
    URL_LINE,
    TOKEN_LINE,
    'export const client = createRealtimeClient({ url, getToken });',
    "export * from '@viba-realtime/client/react';",
  ],
  /** MQTT.js as a browser app bundles it (its `browser` build). */
  mqttJs: ["import mqtt from 'mqtt';", "mqtt.connect('wss://abc123-ats.iot.eu-west-1.amazonaws.com/mqtt');"],
} as const;

type AppName = keyof typeof APPS;

/** Sizes of a set of files, each compressed on its own. */
export interface SizeFigures {
  files: number;
  bytes: number;
  gzipBytes: number;
  brotliBytes: number;
}

export interface SdkSizeResult {
  targetGzipBytes: number;
  /** The floor: a hand-written WebSocket client doing the same join / send. */
  floor: SizeFigures;
  /** The WebSocket-only app with the SDK: what loads up front. */
  core: SizeFigures;
  /** The chunks the core app loads only when `transport: 'mqtt'` is chosen (without MQTT.js). */
  mqttTransport: SizeFigures;
  /** Every export of the core kept. */
  coreAllExports: SizeFigures;
  /** What-if: the core app with the package and the app built for es2020 (older browsers: every `#field`
   * lowered to WeakMap helpers). */
  coreEs2020: SizeFigures;
  /** The core app plus every React binding, up front. */
  coreWithReact: SizeFigures;
  /** coreWithReact - core (sums of separately compressed files, so approximate). */
  reactIncrement: SizeFigures;
  /** MQTT.js's browser build (the peer dependency the MQTT transport loads), for context. */
  mqttJs: SizeFigures;
  /** Minified bytes per source module in the core app (from the TypeScript source), largest first. */
  coreContributors: { module: string; bytes: number }[];
  /** Non-relative imports (static or dynamic) of the core's up-front files: must be none. */
  coreExternalImports: string[];
  meetsTarget: boolean;
  competitors: string;
}

interface AppBundle {
  /** Up front: the entry and the chunks it imports statically, transitively. */
  upFront: SizeFigures;
  /** Behind a dynamic import, not already up front. */
  lazy: SizeFigures;
  /** Non-relative imports of the up-front files. */
  externalImports: string[];
  metafile: Metafile;
  upFrontOutputs: string[];
}

function sizes(contents: readonly Uint8Array[]): SizeFigures {
  let bytes = 0;
  let gzipBytes = 0;
  let brotliBytes = 0;
  for (const content of contents) {
    bytes += content.length;
    gzipBytes += gzipSync(content, { level: 9 }).length;
    brotliBytes += brotliCompressSync(content, {
      params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: content.length },
    }).length;
  }
  return { files: contents.length, bytes, gzipBytes, brotliBytes };
}

function minus(a: SizeFigures, b: SizeFigures): SizeFigures {
  return {
    files: a.files - b.files,
    bytes: a.bytes - b.bytes,
    gzipBytes: a.gzipBytes - b.gzipBytes,
    brotliBytes: a.brotliBytes - b.brotliBytes,
  };
}

/** Bundles `dir/<name>.js` as a browser app and splits its outputs into up front and lazy. */
async function bundleApp(dir: string, name: AppName, extra: EsbuildOptions = {}): Promise<AppBundle> {
  const entry = join(dir, `${name}.js`);
  writeFileSync(entry, `${APPS[name].join('\n')}\n`);
  const outdir = join(dir, `out-${name}`);
  const { metafile, outputFiles } = await build({
    entryPoints: [entry],
    outdir,
    absWorkingDir: dir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: TARGET,
    minify: true,
    external: name === 'mqttJs' ? [] : EXTERNAL,
    define: { 'process.env.NODE_ENV': '"production"' },
    metafile: true,
    write: false,
    logLevel: 'warning',
    ...extra,
  });
  if (metafile === undefined || outputFiles === undefined) throw new Error(`${name}: no metafile or outputs`);
  const outputs = metafile.outputs;
  const contents = new Map(outputFiles.map((f) => [resolve(f.path), f.contents]));
  const entryOutput = Object.keys(outputs).find((key) => outputs[key]?.entryPoint !== undefined);
  if (entryOutput === undefined) throw new Error(`${name}: no entry output`);
  const closure = (roots: string[], kinds: readonly string[]) => {
    const seen = new Set<string>();
    const stack = [...roots];
    while (stack.length > 0) {
      const key = stack.pop() as string;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const imported of outputs[key]?.imports ?? []) {
        if (!imported.external && kinds.includes(imported.kind)) stack.push(imported.path);
      }
    }
    return seen;
  };
  const upFront = closure([entryOutput], ['import-statement']);
  const everything = closure([entryOutput], ['import-statement', 'dynamic-import']);
  const lazy = [...everything].filter((key) => !upFront.has(key));
  const read = (keys: Iterable<string>) =>
    [...keys].filter((key) => key.endsWith('.js')).map((key) => contents.get(resolve(dir, key)) as Uint8Array);
  const externalImports = [...upFront].flatMap((key) =>
    (outputs[key]?.imports ?? []).filter((i) => i.external).map((i) => `${i.kind} ${i.path}`),
  );
  return {
    upFront: sizes(read(upFront)),
    lazy: sizes(read(lazy)),
    externalImports,
    metafile,
    upFrontOutputs: [...upFront],
  };
}

/** Minified bytes per input module over `outputs`, largest first, paths relative to the repository. */
function contributors(bundle: AppBundle, dir: string): { module: string; bytes: number }[] {
  const perModule = new Map<string, number>();
  for (const key of bundle.upFrontOutputs) {
    for (const [input, { bytesInOutput }] of Object.entries(bundle.metafile.outputs[key]?.inputs ?? {})) {
      const module = relative(REPO, resolve(dir, input)).split('\\').join('/');
      perModule.set(module, (perModule.get(module) ?? 0) + bytesInOutput);
    }
  }
  return [...perModule]
    .map(([module, bytes]) => ({ module, bytes }))
    .filter((c) => c.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes);
}

export async function runSdkSize(): Promise<SdkSizeResult> {
  const dir = mkdtempSync(join(tmpdir(), 'viba-sdk-size-'));
  try {
    await stagePackage(dir, { declarations: false });
    const floor = await bundleApp(dir, 'floor');
    const core = await bundleApp(dir, 'core');
    const coreAll = await bundleApp(dir, 'coreAll');
    const coreReact = await bundleApp(dir, 'coreReact');
    const mqttJs = await bundleApp(dir, 'mqttJs', { nodePaths: [join(REPO, 'node_modules')] });
    const es2020Dir = join(dir, 'es2020');
    mkdirSync(es2020Dir);
    await stagePackage(es2020Dir, { declarations: false, target: 'es2020' });
    const coreEs2020 = await bundleApp(es2020Dir, 'core', { target: 'es2020' });
    // The same core app from the TypeScript source, for the per-module breakdown.
    const sourceDir = join(dir, 'source');
    mkdirSync(sourceDir);
    const fromSource = await bundleApp(sourceDir, 'core', {
      alias: { '@viba-realtime/client': join(PACKAGE_DIR, 'src', 'index.ts') },
    });
    return {
      targetGzipBytes: TARGET_GZIP_BYTES,
      floor: floor.upFront,
      core: core.upFront,
      mqttTransport: core.lazy,
      coreAllExports: coreAll.upFront,
      coreEs2020: coreEs2020.upFront,
      coreWithReact: coreReact.upFront,
      reactIncrement: minus(coreReact.upFront, core.upFront),
      mqttJs: mqttJs.upFront,
      coreContributors: contributors(fromSource, sourceDir),
      coreExternalImports: core.externalImports,
      meetsTarget: core.upFront.gzipBytes < TARGET_GZIP_BYTES,
      competitors: 'not measured: no comparable SDK is installed in this repository',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** True when the core loads nothing but its own chunks up front and the MQTT transport is a lazy chunk. */
export function sdkSizeCorrect(result: SdkSizeResult): boolean {
  return result.coreExternalImports.length === 0 && result.mqttTransport.files > 0 && result.core.files > 0;
}

const kb = (bytes: number) => Math.round((bytes / 1024) * 100) / 100;

function printSdkSize(result: SdkSizeResult): void {
  const row = (artifact: string, s: SizeFigures, options: { vsFloor?: boolean; files?: boolean } = {}) => ({
    artifact,
    files: options.files === false ? undefined : s.files,
    'min KB': kb(s.bytes),
    'gzip KB': kb(s.gzipBytes),
    'brotli KB': kb(s.brotliBytes),
    'gzip vs floor': options.vsFloor ? Math.round((s.gzipBytes / result.floor.gzipBytes) * 10) / 10 : undefined,
  });
  printTable(
    [
      row('floor: hand-written WebSocket join/send (baseline)', result.floor, { vsFloor: true }),
      row('@viba-realtime/client core, WebSocket (join/send app)', result.core, { vsFloor: true }),
      row('  core, every export kept', result.coreAllExports, { vsFloor: true }),
      row('  what-if: package and app built for es2020', result.coreEs2020, { vsFloor: true }),
      row('  MQTT transport chunk, lazy (without MQTT.js)', result.mqttTransport),
      row('  React bindings, every hook (increment)', result.reactIncrement, { files: false }),
      row('MQTT.js browser build (peer dependency, context)', result.mqttJs),
    ],
    { title: `Client SDK size: browser app bundles (esbuild, ESM, minified, ${TARGET}), KB = 1,024 bytes` },
  );
  console.log(
    `target: core < ${kb(result.targetGzipBytes)} KB gzipped: ${result.meetsTarget ? 'met' : 'NOT met'} ` +
      `(${kb(result.core.gzipBytes)} KB)`,
  );
  console.log(`competitors: ${result.competitors}`);
  const total = result.coreContributors.reduce((sum, c) => sum + c.bytes, 0);
  printTable(
    result.coreContributors
      .slice(0, TOP_CONTRIBUTORS)
      .map((c) => ({ module: c.module, 'min bytes': c.bytes, share: `${Math.round((c.bytes / total) * 100)}%` })),
    { title: 'Where the core comes from (minified bytes per source module, before compression)' },
  );
  if (result.coreExternalImports.length > 0) {
    console.error(`the core imports up front: ${result.coreExternalImports.join(', ')}`);
  }
}

/** CLI (and `bench/run.ts`): true when every bundle built and the core loads only itself up front.
 * `npx tsx bench/sdk-size.ts [--no-write]`. */
export async function main(args: BenchArgs = parseBenchArgs()): Promise<boolean> {
  const result = await runSdkSize();
  printSdkSize(result);
  if (args.write) console.log(`result: ${writeResult('sdk-size', { ...result })}`);
  // The size target is reported, never a failure (bench/run.ts's contract).
  return sdkSizeCorrect(result);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) await main();
