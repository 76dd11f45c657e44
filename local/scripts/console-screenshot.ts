/**
 * Makes `docs/console.png`, the README's picture of the emulator console: starts an emulator on a free port,
 * gives it something to show (WebSocket and MQTT users chatting in two rooms, a refused connect, a
 * notification, an announcement, a chat sent from the console), opens the console in headless Chromium at
 * 1280x800 and takes the picture, kept small as a palette PNG (./png-palette.ts).
 *
 *   npx tsx local/scripts/console-screenshot.ts [out.png]     (default docs/console.png)
 *
 * Needs Chromium at /usr/bin/chromium (or CHROMIUM_PATH), as the browser tests do.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { clientIdFor, topics } from '@viba-realtime/protocol';
import mqtt from 'mqtt';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { startEmulator } from '../src/index.js';
import { toPalettePng } from './png-palette.js';

const out = process.argv[2] ?? fileURLToPath(new URL('../../docs/console.png', import.meta.url));

/** Opens a raw WebSocket client as `sub` and resolves once it is open. */
function open(url: string, token: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends a frame and waits for its ack (or error). */
function request(ws: WebSocket, frame: Record<string, unknown>): Promise<unknown> {
  const id = `shot-${Math.random().toString(36).slice(2, 10)}`;
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const answer = JSON.parse(String(data)) as { ref?: string };
      if (answer.ref !== id) return;
      ws.off('message', onMessage);
      resolve(answer);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ ...frame, id }));
  });
}

const emulator = await startEmulator({ port: 0, logLevel: 'silent' });
const post = (path: string, body: unknown) =>
  fetch(`${emulator.httpUrl}/_admin/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).then((response) => response.json());
try {
  const token = (sub: string, groups: string[] = []) => emulator.issuer.mintPair({ sub, groups }).idToken;
  const alice = await open(emulator.url, token('alice', ['staff']));
  const bob = await open(emulator.url, token('bob'));
  await post('/rooms', { room: 'ops', visibility: 'private', members: ['alice', 'bob'] });
  for (const ws of [alice, bob]) await request(ws, { action: 'join', room: 'lobby' });
  await request(alice, { action: 'join', room: 'ops' });

  // Dave is on MQTT (IoT Core), from a phone.
  const dave = await mqtt.connectAsync(emulator.mqttUrl ?? '', {
    clientId: clientIdFor('dave', 'phone'),
    username: 'x',
    password: token('dave'),
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  await dave.subscribeAsync([topics.responses('dave'), topics.userRoomsFilter('dave')]);
  await dave.publishAsync(topics.requests('dave'), JSON.stringify({ action: 'join', room: 'lobby', id: 'dave-1' }));

  await request(alice, { action: 'send', room: 'lobby', body: { text: 'Morning! Deploy at 10?' } });
  await request(bob, { action: 'send', room: 'lobby', body: { text: 'Works for me' } });
  await request(alice, { action: 'send', room: 'ops', body: { text: 'Staging is green' } });
  await post('/chat', { user: 'carol', room: 'lobby', text: 'Sent from the console, as carol' });
  await post('/notify', { users: ['bob'], title: 'Your order shipped' });
  await post('/announce', { text: 'Maintenance at 2 am' });
  // A refused connect (an expired-looking token from another pool), for the event log's refusal line.
  await new Promise<void>((resolve) => {
    const refused = new WebSocket(`${emulator.url}?token=not-a-token`);
    refused.once('unexpected-response', (_req, res) => {
      res.resume();
      refused.terminate();
      resolve();
    });
    refused.once('error', () => resolve());
  });
  await emulator.gateway.settled();

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(emulator.consoleUrl ?? '');
    await page.getByRole('button', { name: 'lobby', exact: true }).click();
    await page.getByRole('cell', { name: 'Works for me' }).waitFor();
    await page.getByText('Live', { exact: true }).waitFor();
    // A palette PNG: the same picture at a third of the size Chromium writes.
    const png = toPalettePng(await page.screenshot());
    await writeFile(out, png);
    console.log(`wrote ${out} (${Math.round(png.length / 1024)} KB)`);
  } finally {
    await browser.close();
  }
  alice.close();
  bob.close();
  await dave.endAsync();
} finally {
  await emulator.close();
}
