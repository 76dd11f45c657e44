/**
 * Builds the publishable `@viba-realtime/client` into `client-sdk/dist/` (`npm run build -w client-sdk`, or
 * `npx tsx client-sdk/build.ts`; `npm pack` / `npm publish` run it through `prepack`):
 *
 * - ESM: `index.js`, `mqtt.js`, `react.js` + shared `chunks/`, bundled with code splitting, so the core's
 *   lazy `import('./transports/mqtt.js')` loads `mqtt.js` and a WebSocket-only app never downloads it;
 * - CJS: the same files as `.cjs`, converted from the ESM output file by file (relative imports stay
 *   relative, the lazy import becomes a `require`), so the three entries share one copy of each module and
 *   `instanceof ConnectionError` holds across them, as in ESM;
 * - types: `types/*.d.ts` (and `.d.cts` for `require`) emitted by `tsc` with `tsconfig.build.json`.
 *
 * Platform neutral (browser, React Native, Node), target es2022 (see {@link TARGET}). `@viba-realtime/protocol` is not published,
 * so its code is bundled in and its declarations are emitted under `types/protocol/`; `mqtt` and `react` are
 * peer dependencies and stay external. Prints the files and their sizes when run from the command line.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import ts from 'typescript';

/** The package's directory (`client-sdk/`). */
export const PACKAGE_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_DIR = join(PACKAGE_DIR, '..');

/** Output name (without extension) -> source entry, one per `exports` subpath. */
export const ENTRIES = {
  index: 'src/index.ts',
  mqtt: 'src/transports/mqtt.ts',
  react: 'src/react/index.ts',
} as const;

/**
 * The syntax the package ships: ES2022, which every browser since 2021 (Chrome 94, Firefox 93, Safari 15.4)
 * and Node 16.11+ run as is. Below it, esbuild rewrites each `#private` field into WeakMap helpers (+1.4 KB
 * gzipped on the core). React Native apps are unaffected: Metro transpiles `node_modules` for Hermes anyway.
 */
export const TARGET = 'es2022';

/** Peer dependencies (and their subpaths): never bundled. */
export const EXTERNAL = ['mqtt', 'react', 'react/*', 'react-dom', 'react-dom/*'];

/** The bundled workspace package whose declarations are emitted next to ours. */
const PROTOCOL_PACKAGE = '@viba-realtime/protocol';
const PROTOCOL_TYPES_DIR = 'protocol';

export interface BuildOptions {
  /** @default `client-sdk/dist` (emptied first) */
  outdir?: string;
  /** Emit the `.d.ts` / `.d.cts` files (the slow part, ~seconds). @default true */
  declarations?: boolean;
  /** esbuild's target (the bench's what-ifs). @default {@link TARGET} */
  target?: string;
}

export interface BuiltFile {
  /** Relative to the output directory, `/`-separated. */
  path: string;
  bytes: number;
  gzipBytes: number;
}

export interface BuildResult {
  outdir: string;
  files: BuiltFile[];
}

/** Rewrites relative `.js` imports of the ESM output to the `.cjs` siblings and keeps them external. */
const cjsSiblings: Plugin = {
  name: 'cjs-siblings',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\.?\// }, (args) =>
      args.kind === 'entry-point' ? undefined : { path: args.path.replace(/\.js$/, '.cjs'), external: true },
    );
  },
};

async function buildJavaScript(outdir: string, target: string): Promise<void> {
  const entryPoints = Object.fromEntries(Object.entries(ENTRIES).map(([name, src]) => [name, join(PACKAGE_DIR, src)]));
  const esm = await build({
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'neutral',
    target,
    chunkNames: 'chunks/[name]-[hash]',
    external: EXTERNAL,
    // Workspace packages export their TypeScript source under this condition (see package.json).
    conditions: ['viba-source'],
    metafile: true,
    absWorkingDir: PACKAGE_DIR,
    logLevel: 'warning',
  });
  const esmFiles = Object.keys(esm.metafile.outputs)
    .filter((file) => file.endsWith('.js'))
    .map((file) => join(PACKAGE_DIR, file));
  await build({
    entryPoints: esmFiles,
    outdir,
    outbase: outdir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    format: 'cjs',
    platform: 'neutral',
    target,
    // Turns `import('./mqtt.js')` into a `require('./mqtt.cjs')` (one module registry for all entries) and
    // `import('mqtt')` into `require('mqtt')` (MQTT.js ships CommonJS).
    supported: { 'dynamic-import': false },
    external: EXTERNAL,
    plugins: [cjsSiblings],
    absWorkingDir: PACKAGE_DIR,
    logLevel: 'warning',
  });
}

/** `from './x.js'` / `import('./x.js')` specifiers in declaration text. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*)(['"])([^'"]+)\2/g;

function rewriteSpecifiers(text: string, rewrite: (specifier: string) => string): string {
  return text.replace(SPECIFIER, (_all, head: string, quote: string, specifier: string) => {
    return `${head}${quote}${rewrite(specifier)}${quote}`;
  });
}

/**
 * Emits the declarations with the TypeScript API and `tsconfig.build.json`, moving them as they are written:
 * `client-sdk/src/**` -> `types/**`, `protocol/src/**` -> `types/protocol/**`, the protocol's package
 * specifier made relative, and a `.d.cts` twin of each file (relative specifiers `.js` -> `.cjs`).
 */
function buildDeclarations(outdir: string): void {
  const configPath = join(PACKAGE_DIR, 'tsconfig.build.json');
  const diagnostics: ts.Diagnostic[] = [];
  const host: ts.ParseConfigFileHost = {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => diagnostics.push(diagnostic),
  };
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, host);
  if (!parsed) throw new Error(`cannot read ${configPath}: ${formatDiagnostics(diagnostics)}`);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  const emitted = parsed.options.outDir as string;
  const typesDir = join(outdir, 'types');
  const sdkSrc = join(emitted, 'client-sdk', 'src');
  const protocolSrc = join(emitted, 'protocol', 'src');
  const result = program.emit(undefined, (fileName, text) => {
    const file = fileName.split('/').join(sep);
    let target: string;
    if (file.startsWith(sdkSrc + sep)) {
      const rel = relative(sdkSrc, file);
      if (rel.split(sep)[0] === PROTOCOL_TYPES_DIR) throw new Error(`src/${rel} collides with the protocol types`);
      target = join(typesDir, rel);
    } else if (file.startsWith(protocolSrc + sep))
      target = join(typesDir, PROTOCOL_TYPES_DIR, relative(protocolSrc, file));
    else throw new Error(`unexpected declaration output ${fileName}`);
    const protocolIndex = posix.join(PROTOCOL_TYPES_DIR, 'index.js');
    const toProtocol = relative(dirname(target), join(typesDir, protocolIndex)).split(sep).join('/');
    const esmText = rewriteSpecifiers(text, (specifier) =>
      specifier === PROTOCOL_PACKAGE ? (toProtocol.startsWith('.') ? toProtocol : `./${toProtocol}`) : specifier,
    );
    const cjsText = rewriteSpecifiers(esmText, (specifier) =>
      specifier.startsWith('.') ? specifier.replace(/\.js$/, '.cjs') : specifier,
    );
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, esmText);
    writeFileSync(target.replace(/\.d\.ts$/, '.d.cts'), cjsText);
  });
  const errors = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics].filter(
    (d) => d.category === ts.DiagnosticCategory.Error,
  );
  if (errors.length > 0 || result.emitSkipped) throw new Error(`tsc failed:\n${formatDiagnostics(errors)}`);
}

function formatDiagnostics(diagnostics: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => REPO_DIR,
    getNewLine: () => '\n',
  });
}

function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path, base) : [relative(base, path).split(sep).join('/')];
  });
}

/** Builds the package into `options.outdir` (emptied first) and lists what it wrote. */
export async function buildClientSdk(options: BuildOptions = {}): Promise<BuildResult> {
  const outdir = options.outdir ?? join(PACKAGE_DIR, 'dist');
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  await buildJavaScript(outdir, options.target ?? TARGET);
  if (options.declarations ?? true) buildDeclarations(outdir);
  const files = listFiles(outdir)
    .sort()
    .map((path) => {
      const content = readFileSync(join(outdir, path));
      return { path, bytes: content.length, gzipBytes: gzipSync(content, { level: 9 }).length };
    });
  return { outdir, files };
}

/**
 * Builds the package and lays it out as `npm install` would, in `<root>/node_modules/@viba-realtime/client/`
 * (`package.json` and `dist/`, what `files` publishes), so that a consumer in `root` resolves it through its
 * real `exports` map. Returns the package's directory.
 */
export async function stagePackage(root: string, options: Omit<BuildOptions, 'outdir'> = {}): Promise<string> {
  const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as { name: string };
  const dir = join(root, 'node_modules', ...manifest.name.split('/'));
  await buildClientSdk({ ...options, outdir: join(dir, 'dist') });
  writeFileSync(join(dir, 'package.json'), readFileSync(join(PACKAGE_DIR, 'package.json')));
  return dir;
}

function printSizes(result: BuildResult): void {
  const rows = result.files.filter((f) => /\.c?js$/.test(f.path));
  const width = Math.max(...rows.map((f) => f.path.length));
  console.log(`${'file'.padEnd(width)}  ${'bytes'.padStart(8)}  ${'gzip'.padStart(8)}`);
  for (const f of rows)
    console.log(`${f.path.padEnd(width)}  ${String(f.bytes).padStart(8)}  ${String(f.gzipBytes).padStart(8)}`);
  const declarations = result.files.filter((f) => /\.d\.c?ts$/.test(f.path));
  const declarationBytes = declarations.reduce((sum, f) => sum + f.bytes, 0);
  console.log(`+ ${declarations.length} declaration files (${declarationBytes} bytes)`);
  console.log('Unminified library files; what an app ships, minified and gzipped: npx tsx bench/sdk-size.ts');
  console.log(`built ${relative(process.cwd(), result.outdir) || '.'}`);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const started = performance.now();
  const result = await buildClientSdk();
  printSizes(result);
  console.log(`in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
