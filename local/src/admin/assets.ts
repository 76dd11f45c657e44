/**
 * The console page's files. Its script is TypeScript (`local/console/src/`), bundled in memory with esbuild by
 * the running emulator on the page's first visit: nothing built is committed or can go stale, there is no build
 * step to forget after a pull, and esbuild (a dev dependency of the workspace root, which `npm ci` installs)
 * takes some 20 ms for it.
 * The HTML and CSS are served as they are.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminUnavailableError } from './errors.js';

/**
 * `local/console/`. A function, not a constant: in a test environment that is not Node's (happy-dom, a
 * browser), `import.meta.url` is no file URL, and importing the package there must not throw.
 */
export function consoleRoot(): string {
  return fileURLToPath(new URL('../../console/', import.meta.url));
}

/** One file of the page. */
export interface ConsoleAsset {
  contentType: string;
  body: string;
}

/** The files the console page is made of, by the name it is served under (`/_admin/assets/{name}`). */
export type ConsoleAssetName = 'index.html' | 'console.js' | 'console.css';

/** Browsers the bundle is written for: current Chromium and Firefox (and Safari). */
const TARGETS = ['chrome120', 'firefox120', 'safari17'];

/** Bundles `local/console/src/main.ts` into one ES module. */
export async function buildConsoleScript(): Promise<string> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw new AdminUnavailableError(
      `The console needs esbuild to build its page (${error instanceof Error ? error.message : String(error)}). Run npm install in the repository.`,
    );
  }
  const result = await esbuild.build({
    entryPoints: [join(consoleRoot(), 'src', 'main.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: TARGETS,
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error('esbuild produced no console bundle');
  return output.text;
}

/**
 * Loads the page's files once, on first use: the build starts when the page is first asked for, and the
 * script's request waits for it. A failed build is reported on the request (and retried on the next), never
 * thrown at start-up: the emulator works without its console.
 * @example
 * const assets = createConsoleAssets();
 * const { contentType, body } = await assets.get('console.js');
 */
export function createConsoleAssets(build: () => Promise<string> = buildConsoleScript) {
  let script: Promise<string> | undefined;
  const files = new Map<string, Promise<string>>();
  const file = (name: string) => {
    let loading = files.get(name);
    if (!loading) {
      loading = readFile(join(consoleRoot(), name), 'utf8');
      files.set(name, loading);
      loading.catch(() => files.delete(name));
    }
    return loading;
  };
  const loadScript = () => {
    if (!script) {
      script = build();
      script.catch(() => {
        script = undefined;
      });
    }
    return script;
  };
  return {
    /** Starts the build now (the page is being served; its script is asked for next). */
    warm(): void {
      loadScript().catch(() => {});
    },
    async get(name: ConsoleAssetName): Promise<ConsoleAsset> {
      switch (name) {
        case 'index.html':
          return { contentType: 'text/html; charset=utf-8', body: await file('index.html') };
        case 'console.css':
          return { contentType: 'text/css; charset=utf-8', body: await file('console.css') };
        case 'console.js':
          return { contentType: 'text/javascript; charset=utf-8', body: await loadScript() };
      }
    },
  };
}

/** What {@link createConsoleAssets} returns. */
export type ConsoleAssets = ReturnType<typeof createConsoleAssets>;
