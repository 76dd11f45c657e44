/**
 * Browser test support: Debian's Chromium driven by playwright-core (`npx playwright install` cannot download
 * browsers here), the demo page (`demo/`) served by Vite's dev server on a free port, and pages that keep
 * their console output for the failure report.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createServer } from 'vite';

/** Where Debian's `chromium` package puts the browser; `CHROMIUM_PATH` overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags for a quiet, offline, throwaway browser (playwright-core adds a fresh `--user-data-dir` itself). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches headless Chromium. Throws when it is not installed: the browser tests never skip silently.
 * @example
 * const browser = await launchChromium();
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_PATH}. The browser tests drive Debian's chromium package: ` +
        'install it with `sudo apt-get install -y --no-install-recommends chromium` (.ci/run does), ' +
        'or point CHROMIUM_PATH at a Chromium binary.',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/** A page in its own browser context (own storage: another user), with its console and errors kept. */
export interface TestPage {
  page: Page;
  /** Console messages, page errors and failed requests, prefixed with the page's name. */
  log: string[];
  /** Requests to anything but loopback (the demo must need no network). */
  external: string[];
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Opens `url` in a fresh context of `browser`.
 * @example
 * const { page, log } = await openPage(browser, 'alice', `${demo.url}?user=alice`);
 */
export async function openPage(browser: Browser, name: string, url: string): Promise<TestPage> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const log: string[] = [];
  const external: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (/^(https?|wss?):$/.test(url.protocol) && !LOOPBACK_HOSTS.has(url.hostname)) external.push(url.href);
  });
  page.on('console', (message) => log.push(`[${name}] console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`[${name}] pageerror: ${error.stack ?? error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) log.push(`[${name}] HTTP ${response.status()}: ${response.url()}`);
  });
  page.on('requestfailed', (request) =>
    log.push(`[${name}] request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`),
  );
  page.setDefaultTimeout(15_000);
  await page.goto(url);
  return { page, log, external };
}

/** The demo app's directory. */
export const DEMO_ROOT = fileURLToPath(new URL('../../../demo/', import.meta.url));

/** A running Vite dev server of the demo page. */
export interface DemoServer {
  /** `http://127.0.0.1:{port}/` */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `demo/` with Vite's dev server (its own config) on a free loopback port, without file watching or
 * HMR (the test changes no file), and with its own dependency cache, so a `npm run demo` running meanwhile
 * shares nothing with it.
 */
export async function startDemoServer(): Promise<DemoServer> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'viba-demo-vite-'));
  const server = await createServer({
    configFile: join(DEMO_ROOT, 'vite.config.ts'),
    root: DEMO_ROOT,
    cacheDir,
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0, strictPort: true, hmr: false, watch: null },
  });
  const close = async () => {
    await server.close();
    await rm(cacheDir, { recursive: true, force: true });
  };
  await server.listen();
  const address = server.httpServer?.address();
  if (address === null || address === undefined || typeof address === 'string') {
    await close();
    throw new Error('Vite is not listening on a TCP port');
  }
  return { url: `http://127.0.0.1:${address.port}/`, close };
}
