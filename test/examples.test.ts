/** The README's SDK example is a real file, shown verbatim, and it runs against the emulator as printed. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const example = readFileSync(new URL('examples/sdk-node.ts', root), 'utf8');
const readme = readFileSync(new URL('README.md', root), 'utf8');
// Run in Chromium by test/browser/chat.e2e.test.ts.
const browserExample = readFileSync(new URL('demo/src/minimal.ts', root), 'utf8');

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
});
afterAll(async () => {
  await emulator?.close();
});

describe('the README browser example (demo/src/minimal.ts)', () => {
  it('is in the README verbatim', () => {
    expect(readme).toContain(`\`\`\`ts\n${browserExample}\`\`\``);
  });
});

describe('examples/sdk-node.ts', () => {
  it('is in the README verbatim', () => {
    expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
  });

  it('runs against the emulator with `npm run example:sdk` and prints the chat and the notification', async () => {
    const scripts = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).scripts as Record<string, string>;
    expect(scripts['example:sdk']).toBe(
      'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true tsx --conditions=viba-source examples/sdk-node.ts',
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['node_modules/tsx/dist/cli.mjs', '--conditions=viba-source', 'examples/sdk-node.ts'],
      {
        cwd: root.pathname,
        env: { ...process.env, VIBA_URL: emulator.httpUrl, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        timeout: 30_000,
      },
    );
    expect(stdout).toContain('bob got #1 from alice: hello from the SDK');
    expect(stdout).toContain("alice's message is stored as #1");
    expect(stdout).toContain('bob was notified: Your order shipped');
  });
});
