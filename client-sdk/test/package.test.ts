/**
 * The publishable package (`client-sdk/build.ts`): built once into a temporary directory laid out as an
 * installed dependency (`node_modules/@viba-realtime/client/{package.json,dist}`, the real `exports` map),
 * then used as a consumer would: imported (ESM) and required (CommonJS) by plain Node processes, and
 * typechecked by `tsc`. Also pins that the browser core is browser-safe (no MQTT.js, React or Node-only API)
 * and that every `exports` target exists. Sizes are not asserted: `npm run bench` reports them.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { transformSync } from 'esbuild';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_DIR, stagePackage } from '../build.js';

const REPO = join(PACKAGE_DIR, '..');
/** Peer dependencies (and React's types) the consumer "installs": links to the workspace's copies. */
const PEERS = ['mqtt', 'react', '@types/react'];

interface ExportConditions {
  'viba-source'?: string;
  import?: { types: string; default: string };
  require?: { types: string; default: string };
}

interface Manifest {
  exports: Record<string, ExportConditions | string>;
  main: string;
  module: string;
  types: string;
  files: string[];
  sideEffects: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as Manifest;

let root: string;
let pkg: string;

beforeAll(async () => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'viba-client-package-')));
  pkg = await stagePackage(root);
  for (const peer of PEERS) {
    mkdirSync(dirname(join(root, 'node_modules', peer)), { recursive: true });
    symlinkSync(join(REPO, 'node_modules', peer), join(root, 'node_modules', peer), 'dir');
  }
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
}, 60_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Runs `node <args>` in the consumer directory, with none of this process's flags or loaders; returns stdout. */
function node(args: string[]): string {
  const run = spawnSync(process.execPath, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return run.stdout;
}

const TYPEOFS = `({
  createRealtimeClient: typeof core.createRealtimeClient,
  websocketTransport: typeof core.websocketTransport,
  ConnectionError: typeof core.ConnectionError,
  LIMITS: typeof core.LIMITS,
  mqttTransport: typeof mqtt.mqttTransport,
  RealtimeProvider: typeof react.RealtimeProvider,
  useRoom: typeof react.useRoom,
})`;

const EXPECTED_TYPEOFS = {
  createRealtimeClient: 'function',
  websocketTransport: 'function',
  ConnectionError: 'function',
  LIMITS: 'object',
  mqttTransport: 'function',
  RealtimeProvider: 'function',
  useRoom: 'function',
};

/** The first match of `pattern` in `text` with some context (a failure shows where, not the whole bundle). */
function firstMatch(text: string, pattern: RegExp): string | undefined {
  const match = pattern.exec(text);
  return match ? text.slice(Math.max(0, match.index - 60), match.index + match[0].length + 60) : undefined;
}

describe('@viba-realtime/client as published', () => {
  it('imports every entry as ESM in plain Node', () => {
    const script = [
      "const core = await import('@viba-realtime/client');",
      "const mqtt = await import('@viba-realtime/client/mqtt');",
      "const react = await import('@viba-realtime/client/react');",
      `process.stdout.write(JSON.stringify(${TYPEOFS}));`,
    ].join('\n');
    expect(JSON.parse(node(['--input-type=module', '-e', script]))).toEqual(EXPECTED_TYPEOFS);
  });

  it('requires every entry as CommonJS (createRequire), one copy of the shared code', () => {
    const script = [
      "const { createRequire } = require('node:module');",
      "const load = createRequire(require('node:path').join(process.cwd(), 'consumer.cjs'));",
      "const core = load('@viba-realtime/client');",
      "const mqtt = load('@viba-realtime/client/mqtt');",
      "const react = load('@viba-realtime/client/react');",
      'const files = Object.keys(load.cache).filter((f) => f.includes("@viba-realtime"));',
      `process.stdout.write(JSON.stringify({ typeofs: ${TYPEOFS}, files }));`,
    ].join('\n');
    const { typeofs, files } = JSON.parse(node(['--input-type=commonjs', '-e', script])) as {
      typeofs: unknown;
      files: string[];
    };
    expect(typeofs).toEqual(EXPECTED_TYPEOFS);
    // The three entries share their chunks (so `instanceof` holds across entries, as in ESM).
    expect(files.every((f) => f.endsWith('.cjs'))).toBe(true);
    expect(files.filter((f) => f.includes('chunks')).length).toBeGreaterThan(0);
  });

  it('keeps the ESM core browser-safe: no MQTT.js, no React, no Node-only API; MQTT loads lazily', () => {
    const dist = join(pkg, 'dist');
    // Comments (the SDK's docs mention Node APIs it avoids) are not code.
    const code = (file: string) =>
      transformSync(readFileSync(join(dist, file), 'utf8'), { minifyWhitespace: true, format: 'esm' }).code;
    // The core's static graph: index.js and every chunk it imports.
    const graph = new Map<string, string>();
    const visit = (file: string) => {
      if (graph.has(file)) return;
      const text = code(file);
      graph.set(file, text);
      for (const [, specifier] of text.matchAll(/(?:\bfrom|\bimport)\s*["']([^"']+)["']/g)) {
        expect(specifier, `static import in ${file}`).toMatch(/^\.\.?\//);
        visit(join(dirname(file), specifier as string));
      }
    };
    visit('index.js');
    expect(graph.size).toBeGreaterThan(1);
    const dynamicImports = [...graph.values()].flatMap((text) =>
      [...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]),
    );
    expect(dynamicImports).toEqual(['./mqtt.js']);
    const mqttEntry = code('mqtt.js');
    expect(firstMatch(mqttEntry, /function mqttTransport\b/)).toBeDefined();
    expect(firstMatch(mqttEntry, /\bimport\(\s*"mqtt"\s*\)/)).toBeDefined();
    // Static imports are all relative (checked above) and the one dynamic import is the transport's chunk:
    // the core imports no MQTT.js, React or `ws`. Nor does it carry the MQTT transport's code.
    for (const [file, text] of graph) expect(firstMatch(text, /function mqttTransport\b/), file).toBeUndefined();
    // No Node-only API anywhere in the ESM build (the MQTT and React entries run in browsers too).
    const everything = new Map([...graph, ['mqtt.js', mqttEntry], ['react.js', code('react.js')]]);
    for (const [file, text] of everything) {
      for (const nodeOnly of [
        /["']node:/,
        /\brequire\s*\(/,
        /\bBuffer\b/,
        /\bprocess\.\w/,
        /\b__(?:dirname|filename)\b/,
      ]) {
        expect(firstMatch(text, nodeOnly), `${file}: ${nodeOnly}`).toBeUndefined();
      }
    }
    // The CommonJS core loads the CommonJS MQTT transport lazily too, not the ESM one.
    const cjsCore = readFileSync(join(dist, 'index.cjs'), 'utf8');
    expect(cjsCore).toContain('require("./mqtt.cjs")');
    expect(cjsCore).not.toMatch(/\bimport\(/);
  });

  it('points every exports target at a file that exists and that "files" publishes', () => {
    const targets: string[] = [manifest.main, manifest.module, manifest.types];
    expect(Object.keys(manifest.exports).sort()).toEqual(['.', './mqtt', './package.json', './react']);
    for (const [subpath, value] of Object.entries(manifest.exports)) {
      if (subpath === './package.json') continue;
      expect(typeof value, subpath).toBe('object');
      const conditions = value as ExportConditions;
      // The source condition first (the workspace's tools), then what a consumer resolves.
      expect(Object.keys(conditions), subpath).toEqual(['viba-source', 'import', 'require']);
      expect(existsSync(join(PACKAGE_DIR, conditions['viba-source'] as string)), subpath).toBe(true);
      for (const [condition, extensions] of [
        ['import', ['.d.ts', '.js']],
        ['require', ['.d.cts', '.cjs']],
      ] as const) {
        const target = conditions[condition];
        // `types` first: TypeScript takes the first condition that matches.
        expect(Object.keys(target ?? {}), `${subpath} ${condition}`).toEqual(['types', 'default']);
        expect(target?.types.endsWith(extensions[0]), `${subpath} ${condition} types`).toBe(true);
        expect(target?.default.endsWith(extensions[1]), `${subpath} ${condition} default`).toBe(true);
        targets.push(target?.types as string, target?.default as string);
      }
    }
    for (const target of targets) {
      expect(target, target).toMatch(/^\.\/dist\//);
      expect(manifest.files.some((entry) => target.startsWith(`./${entry}/`))).toBe(true);
      expect(existsSync(join(pkg, target)), target).toBe(true);
    }
    expect(manifest.sideEffects).toBe(false);
    // The protocol is bundled in and not published: a dependency on it would break every install.
    const runtime = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies });
    expect(runtime.filter((name) => name.startsWith('@viba-realtime/'))).toEqual([]);
  });

  it('typechecks a consumer against the built declarations (nodenext: ESM and CommonJS)', () => {
    const esm = join(root, 'app.mts');
    const cjs = join(root, 'app.cts');
    writeFileSync(
      esm,
      [
        "import { type ChatFrame, ConnectionError, createRealtimeClient, LIMITS } from '@viba-realtime/client';",
        "import { mqttTransport } from '@viba-realtime/client/mqtt';",
        "import { useRoom } from '@viba-realtime/client/react';",
        'interface App { message: { text: string } }',
        "const client = createRealtimeClient<App>({ url: 'wss://x', getToken: async () => 't' });",
        "const room = client.join('lobby');",
        "room.on('message', (m) => console.log(m.body.text.toUpperCase()));",
        "void room.send({ text: 'hi' });",
        '// @ts-expect-error the schema says text is a string',
        'void room.send({ text: 1 });',
        'const frame: ChatFrame | undefined = undefined;',
        'console.log(frame, LIMITS, new ConnectionError("x") instanceof Error, mqttTransport, useRoom);',
      ].join('\n'),
    );
    writeFileSync(
      cjs,
      [
        "import sdk = require('@viba-realtime/client');",
        "import mqtt = require('@viba-realtime/client/mqtt');",
        "const client: sdk.RealtimeClient = sdk.createRealtimeClient({ url: 'wss://x', getToken: async () => 't' });",
        '// @ts-expect-error url is required',
        'sdk.createRealtimeClient({});',
        'console.log(client, mqtt.mqttTransport);',
      ].join('\n'),
    );
    const program = ts.createProgram({
      rootNames: [esm, cjs],
      options: {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
        types: [],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      },
    });
    const diagnostics = ts.getPreEmitDiagnostics(program);
    const text = ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => '\n',
    });
    expect(text).toBe('');
    // Resolved from the built package, not from the workspace's sources.
    const files = program.getSourceFiles().map((f) => f.fileName);
    expect(files.some((f) => f.startsWith(join(pkg, 'dist', 'types')))).toBe(true);
    expect(files.some((f) => f.startsWith(join(PACKAGE_DIR, 'src')))).toBe(false);
  });
});
