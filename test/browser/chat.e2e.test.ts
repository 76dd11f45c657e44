/**
 * The demo page (`demo/`, served by Vite) in headless Chromium against the emulator: two users chat through
 * `@viba-realtime/client` in the browser, and a backend publisher's notification reaches one of them. Every
 * wait is on the DOM (playwright's locator waits), never a sleep.
 */
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { createPublisher, fetchLocalPublisherConfig, type Publisher } from '@viba-realtime/publisher';
import type { Browser, Locator } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoServer, launchChromium, openPage, startDemoServer, type TestPage } from './support/browser.js';

const ROOM = 'e2e-lobby';

let emulator: Emulator;
let publisher: Publisher;
let demo: DemoServer;
let browser: Browser;
let alice: TestPage;
let bob: TestPage;

beforeAll(async () => {
  [emulator, browser, demo] = await Promise.all([
    startEmulator({ port: 0, logLevel: 'silent' }),
    launchChromium(),
    startDemoServer(),
  ]);
  publisher = createPublisher(await fetchLocalPublisherConfig(emulator.httpUrl));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await demo?.close();
  publisher?.close();
  await emulator?.close();
});

function demoUrl(user: string): string {
  return `${demo.url}?${new URLSearchParams({ ws: emulator.url, user, room: ROOM })}`;
}

/** Waits until one element of `locator` has the text (a string: contained; a RegExp: matched). */
async function waitForText(locator: Locator, text: string | RegExp): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor();
}

/** Every page's console and errors, printed when a test fails. */
function printLogsOnFailure(onTestFailed: (handler: () => void) => void): void {
  onTestFailed(() => {
    for (const page of [alice, bob]) if (page) console.error(page.log.join('\n'));
  });
}

describe('the demo chat page in Chromium', { timeout: 60_000 }, () => {
  it('shows the user and room from its URL, connects and joins', async ({ onTestFailed }) => {
    printLogsOnFailure(onTestFailed);
    [alice, bob] = await Promise.all([
      openPage(browser, 'alice', demoUrl('alice')),
      openPage(browser, 'bob', demoUrl('bob')),
    ]);
    for (const [user, { page }] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      expect(await page.getByTestId('user').textContent()).toBe(user);
      expect(await page.getByTestId('room').textContent()).toBe(ROOM);
      await waitForText(page.getByTestId('state'), /^open$/);
      await waitForText(page.getByTestId('room-status'), /^joined$/);
      expect(await page.getByTestId('unread').textContent()).toBe('0');
    }
  });

  it("alice's message appears on bob's page (and on hers)", async ({ onTestFailed }) => {
    printLogsOnFailure(onTestFailed);
    await alice.page.getByTestId('message-input').fill('hello from alice');
    await alice.page.getByTestId('send').click();

    const onBob = bob.page.getByTestId('message').filter({ hasText: 'hello from alice' });
    await onBob.waitFor();
    expect(await onBob.getAttribute('data-from')).toBe('alice');
    await waitForText(alice.page.getByTestId('message'), 'hello from alice');
    expect(await alice.page.getByTestId('message-input').inputValue()).toBe('');
  });

  it('a backend notification to bob shows in his badge and list; mark all read clears the badge', async ({
    onTestFailed,
  }) => {
    printLogsOnFailure(onTestFailed);
    const [sent] = await publisher.notify('bob', { title: 'Your order shipped' });
    expect(sent).toMatchObject({ userId: 'bob', duplicate: false });

    await waitForText(bob.page.getByTestId('unread'), /^1$/);
    const item = bob.page.getByTestId('notification').filter({ hasText: 'Your order shipped' });
    await item.waitFor();
    expect(await item.getAttribute('class')).toContain('unread');
    // Alice's inbox is her own.
    expect(await alice.page.getByTestId('unread').textContent()).toBe('0');

    await bob.page.getByTestId('mark-all-read').click();
    await waitForText(bob.page.getByTestId('unread'), /^0$/);
    expect(await item.getAttribute('class')).not.toContain('unread');
  });

  it('stayed on loopback and raised no page errors', () => {
    const problems = [...alice.log, ...bob.log].filter((line) => /pageerror|request failed|HTTP [45]\d\d/.test(line));
    expect(problems).toEqual([]);
    expect(alice.external.concat(bob.external)).toEqual([]);
  });

  it("runs the README's minimal browser page: it sends and shows its own message", async () => {
    const minimal = await openPage(
      browser,
      'minimal',
      `${demo.url}minimal.html?${new URLSearchParams({ ws: emulator.url })}`,
    );
    await minimal.page.getByText('browser-user: hello from the browser').waitFor();
    expect(minimal.log.filter((line) => /error/i.test(line))).toEqual([]);
    await minimal.page.close();
  });
});
