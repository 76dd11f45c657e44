/**
 * The emulator console (`local/console/`, served at the emulator's `/`) in headless Chromium against a running
 * emulator: a raw WebSocket client's connection appears in the table; a chat sent from the console as a user
 * reaches that client through the gateway; an announcement made from the console (with the keyboard) reaches it
 * too; the event log filters and pauses; a connection is disconnected from its row; moving the clock two hours
 * makes API Gateway's cut close a connection; the layout holds in a narrow window; and the page logs no error.
 * A screenshot is kept in `test-artifacts/` (gitignored). Every wait is on the DOM or on the client's frames,
 * never a sleep.
 */
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../support/ws-client.js';
import { launchChromium, openPage, type TestPage } from './support/browser.js';

const ROOM = 'e2e-console';
/** Where the screenshot goes: a test artifact, never committed (.gitignore). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let emulator: Emulator;
let browser: Browser;
let consolePage: TestPage;
let page: Page;
let zoe: TestClient;

beforeAll(async () => {
  [emulator, browser] = await Promise.all([startEmulator({ port: 0, logLevel: 'silent' }), launchChromium()]);
}, 120_000);

afterAll(async () => {
  // The browser first: closing the emulator under an open page would make its event stream log a failed reconnect.
  await browser?.close();
  await zoe?.close();
  await emulator?.close();
});

/** The page's own problems: errors and warnings in its console, uncaught errors, failed or refused requests. */
function problems(): string[] {
  return consolePage.log.filter((line) => /console\.(error|warning)|pageerror|request failed|HTTP [45]\d\d/.test(line));
}

describe('the emulator console in Chromium', { timeout: 60_000 }, () => {
  it('opens at the emulator URL and goes live', async () => {
    consolePage = await openPage(browser, 'console', emulator.consoleUrl ?? '');
    page = consolePage.page;
    await page.setViewportSize({ width: 1280, height: 800 });

    await page
      .getByRole('status')
      .filter({ hasText: /^Live$/ })
      .waitFor();
    expect(await page.title()).toBe('viba-realtime emulator console');
    expect(await page.getByRole('heading', { level: 2 }).allTextContents()).toEqual([
      'Connections',
      'Rooms',
      'Events',
      'Act as',
      'Faults & time',
    ]);
    expect(await page.getByRole('navigation', { name: 'Sections' }).getByRole('link').count()).toBe(5);
    // The first Tab reaches the skip link, which moves focus past the header.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
  });

  it('shows a connection when a raw WebSocket client connects and joins', async () => {
    zoe = await TestClient.connect(emulator.url, emulator.issuer.mintPair({ sub: 'zoe', groups: ['beta'] }).idToken, {
      name: 'zoe',
    });
    await zoe.request({ action: 'join', room: ROOM });

    const row = page.locator('#connections-table tbody tr').filter({ hasText: 'zoe' });
    await row.filter({ hasText: ROOM }).waitFor();
    expect(await row.textContent()).toContain('WebSocket');
    expect(await row.textContent()).toContain('beta');
    await page.locator('#events-table tbody tr').filter({ hasText: 'user zoe' }).first().waitFor();
  });

  it('sends a chat as a user: the raw client receives it, and the room shows it with its seq', async () => {
    const chat = page.locator('#chat-form');
    await chat.getByLabel('User').fill('yan');
    await chat.getByLabel('Room').fill(ROOM);
    await chat.getByLabel('Message').fill('hello from the console');
    await chat.getByRole('button', { name: 'Send' }).click();

    const frame = await zoe.nextChat(ROOM);
    expect(frame).toMatchObject({ from: 'yan', seq: 1, body: { text: 'hello from the console' } });
    await chat
      .getByRole('status')
      .filter({ hasText: `Sent #1 to ${ROOM} as yan.` })
      .waitFor();

    await page.locator('#rooms-table').getByRole('button', { name: ROOM }).click();
    const message = page.locator('#room-detail tbody tr').filter({ hasText: 'hello from the console' });
    await message.waitFor();
    expect(await message.locator('td').first().textContent()).toBe('1');
    await page.locator('#room-detail li.online').filter({ hasText: 'zoe' }).waitFor();
  });

  it('announces from the keyboard: the raw client receives the announcement', async () => {
    const text = page.locator('#announce-form').getByLabel('Text');
    await text.focus();
    await page.keyboard.type('Maintenance at 2 am');
    await page.keyboard.press('Enter');

    expect(await zoe.next((f) => f.type === 'announcement')).toMatchObject({ body: { text: 'Maintenance at 2 am' } });
    await page.locator('#announce-form').getByRole('status').filter({ hasText: 'Announced to everyone' }).waitFor();
  });

  it('filters the event log by user and kind, and pauses it', async () => {
    const filters = page.locator('#events-filter');
    const rows = page.locator('#events-table tbody tr');
    await filters.getByLabel('User').fill('yan');
    await filters.getByLabel('Kind').selectOption('route');
    await rows.filter({ hasText: 'SEND' }).first().waitFor();
    for (const row of await rows.all()) {
      expect(await row.textContent()).toContain('user yan');
      expect(await row.getAttribute('data-category')).toBe('route');
    }

    const pause = page.getByRole('button', { name: 'Pause' });
    await pause.click();
    expect(await pause.getAttribute('aria-pressed')).toBe('true');
    await page
      .getByRole('status')
      .filter({ hasText: /^Paused$/ })
      .waitFor();
    await pause.click();
    await filters.getByLabel('User').fill('');
    await filters.getByLabel('Kind').selectOption('');
    expect(await pause.getAttribute('aria-pressed')).toBe('false');
  });

  it('takes a screenshot as a test artifact', async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    const path = `${ARTIFACTS}console.png`;
    await page.evaluate(() => window.scrollTo(0, 0));
    const png = await page.screenshot({ path });
    expect(png.length).toBeGreaterThan(10_000);
  });

  it('lays out in a narrow window without a page-wide horizontal scroll', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("disconnects a connection from its row: the client sees DeleteConnection's close", async () => {
    await page.getByRole('button', { name: /^Disconnect zoe / }).click();

    expect(await zoe.closed).toEqual({ code: 1000, reason: 'Connection Closed Normally' });
    await page.locator('#connections-table tbody tr').filter({ hasText: 'zoe' }).waitFor({ state: 'detached' });
  });

  it("moves the emulator's clock 2 hours: API Gateway's 2-hour cut closes a connection", async () => {
    const ada = await TestClient.connect(
      emulator.url,
      emulator.issuer.mintPair({ sub: 'ada', ttlSeconds: 86_400 }).idToken,
    );
    await page.locator('#connections-table tbody tr').filter({ hasText: 'ada' }).waitFor();

    await page.locator('#faults-time').getByRole('button', { name: '+2 h' }).click();

    expect(await ada.closed).toEqual({ code: 1001, reason: 'Going away' });
    await page.locator('#time-result').filter({ hasText: 'Moved 2 h ahead' }).waitFor();
    await page.locator('#clock-offset').filter({ hasText: '(2 h ahead)' }).waitFor();
    await page.locator('#events-table tbody tr').filter({ hasText: 'reached 7200000ms' }).first().waitFor();
  });

  it('logged no error, warning or failed request, and called nothing beyond loopback', () => {
    expect(problems()).toEqual([]);
    expect(consolePage.external).toEqual([]);
  });
});
