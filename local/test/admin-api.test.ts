/**
 * The console's admin API over HTTP and WebSocket against a whole emulator: state read from the gateway, the
 * broker and the store; actions that go through the real handlers and publisher (raw clients see their
 * effects); the event stream; the clock; faults; and who is refused (another origin, another site, a non-JSON
 * action, a foreign Host, a peer beyond this machine) — plus `console: false`.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import {
  ADMIN_EVENT_CATEGORIES,
  type AdminEvent,
  AdminEventBus,
  banner,
  checkApiRequest,
  checkPeer,
  createAdjustableClock,
  describeLine,
  type Emulator,
  type RoomDetail,
  type StateView,
  startEmulator,
} from '@viba-realtime/local';
import { clientIdFor, TOKEN_SWEEPER_HANDLER } from '@viba-realtime/protocol';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TestClient } from '../../test/support/ws-client.js';

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'silent' });
});

afterAll(async () => {
  await emulator?.close();
});

const token = (sub: string, groups: string[] = [], ttlSeconds?: number) =>
  emulator.issuer.mintPair({ sub, groups, ...(ttlSeconds ? { ttlSeconds } : {}) }).idToken;

async function get<T>(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const response = await fetch(`${emulator.httpUrl}${path}`, { headers });
  return { status: response.status, body: (await response.json()) as T };
}

async function post<T>(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${emulator.httpUrl}/_admin/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

/** Waits until an event matching `predicate` is on the bus (events are recorded as the log lines are). */
async function eventWhere(predicate: (event: AdminEvent) => boolean): Promise<AdminEvent> {
  for (let i = 0; i < 200; i++) {
    const found = emulator.console?.events.recent().find(predicate);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('no such event');
}

describe('the console page', () => {
  it('is served at / with a policy that allows only its own files and no framing', async () => {
    const response = await fetch(`${emulator.consoleUrl}`);
    const html = await response.text();

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(html).toContain('<script type="module" src="/_admin/assets/console.js">');
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(emulator.consoleUrl).toBe(`${emulator.httpUrl}/`);
  });

  it('serves its script bundled from TypeScript, and its style', async () => {
    const script = await fetch(`${emulator.httpUrl}/_admin/assets/console.js`);
    const style = await fetch(`${emulator.httpUrl}/_admin/assets/console.css`);

    expect(script.headers.get('content-type')).toContain('text/javascript');
    const code = await script.text();
    expect(code).toContain('/_admin');
    expect(code).not.toMatch(/^import /m);
    expect(style.headers.get('content-type')).toContain('text/css');
    expect(await style.text()).toContain(':focus-visible');
  });

  it('answers 404 for anything else under /_admin/', async () => {
    expect((await get('/_admin/nothing')).status).toBe(404);
    expect((await get('/_admin/api/nothing')).body).toMatchObject({ error: 'not_found' });
  });
});

describe('state', () => {
  it('lists live connections of both channels with user, groups, rooms and times', async () => {
    const alice = await TestClient.connect(emulator.url, token('alice', ['staff']), { name: 'alice' });
    await alice.request({ action: 'join', room: 'state-room' });
    const dave = await mqtt.connectAsync(emulator.mqttUrl ?? '', {
      clientId: clientIdFor('dave', 'phone'),
      username: 'x',
      password: token('dave'),
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    try {
      await eventWhere((e) => e.category === 'connect' && e.user === 'dave');
      const { status, body } = await get<StateView>('/_admin/api/state');

      expect(status).toBe(200);
      const ws = body.connections.find((c) => c.user === 'alice');
      expect(ws).toMatchObject({ channel: 'ws', groups: ['staff'], rooms: ['state-room'], console: false });
      expect(ws?.connectedAt).toBeGreaterThan(0);
      expect(ws?.tokenExp).toBeGreaterThan(body.clock.now / 1000);
      expect(body.connections.find((c) => c.user === 'dave')).toMatchObject({
        channel: 'mqtt',
        clientId: 'dave.phone',
        connectionId: 'mqtt:dave.phone',
        protocol: '5',
        transport: 'tcp',
      });
      expect(body.rooms.find((r) => r.room === 'state-room')).toMatchObject({ visibility: 'public', owner: 'alice' });
      expect(body.emulator).toMatchObject({ url: emulator.url, httpUrl: emulator.httpUrl });
      expect(body.clock.offsetMs).toBe(0);
    } finally {
      await dave.endAsync();
      await alice.close();
    }
  });

  it("shows a room's members, who is online and its latest messages with seq", async () => {
    const bob = await TestClient.connect(emulator.url, token('bob'), { name: 'bob' });
    await bob.request({ action: 'join', room: 'detail-room' });
    await bob.request({ action: 'send', room: 'detail-room', body: { text: 'first' } });
    await bob.request({ action: 'send', room: 'detail-room', body: { text: 'second' } });

    const { body } = await get<RoomDetail>('/_admin/api/rooms/detail-room');

    expect(body).toMatchObject({ room: 'detail-room', lastSeq: 2, members: ['bob'] });
    expect(body.online).toEqual([{ user: 'bob', connectionIds: [expect.any(String)] }]);
    expect(body.messages.map((m) => [m.seq, m.from, m.body.text])).toEqual([
      [1, 'bob', 'first'],
      [2, 'bob', 'second'],
    ]);
    expect((await get('/_admin/api/rooms/no-such-room')).status).toBe(404);
    expect((await get('/_admin/api/rooms/bad%20name')).body).toMatchObject({ error: 'invalid_room' });
    await bob.close();
  });
});

describe('actions', () => {
  it('sends a chat as a user through the gateway: a raw client in the room receives it', async () => {
    const erin = await TestClient.connect(emulator.url, token('erin'), { name: 'erin' });
    await erin.request({ action: 'join', room: 'act-room' });

    const { status, body } = await post<{ ack: { seq: number; room: string } }>('/chat', {
      user: 'frank',
      room: 'act-room',
      text: 'hello from the console',
    });
    const chat = await erin.nextChat('act-room');

    expect(status).toBe(200);
    expect(body.ack).toMatchObject({ room: 'act-room', seq: 1 });
    expect(chat).toMatchObject({ from: 'frank', seq: 1, body: { text: 'hello from the console' } });
    // The console's connection is a real one, marked as the console's.
    const state = (await get<StateView>('/_admin/api/state')).body;
    expect(state.connections.find((c) => c.user === 'frank')).toMatchObject({ console: true, rooms: ['act-room'] });
    // The same connection serves the next chat: no second `joined`.
    await post('/chat', { user: 'frank', room: 'act-room', text: 'again' });
    expect(await erin.nextChat('act-room')).toMatchObject({ seq: 2 });
    expect(
      erin.received.filter((f) => f.type === 'presence' && f.user === 'frank' && f.state === 'joined'),
    ).toHaveLength(1);
    await erin.close();
  });

  it("answers a handler's refusal with its code: a private room the user is not a member of", async () => {
    await post('/rooms', { room: 'closed-club', visibility: 'private', members: ['gina'] });

    const { status, body } = await post('/chat', { user: 'mallory', room: 'closed-club', text: 'let me in' });

    expect(status).toBe(403);
    expect(body).toMatchObject({ error: 'forbidden' });
  });

  it('creates a private room with members, grants and revokes through the publisher', async () => {
    const created = await post<{ created: boolean }>('/rooms', {
      room: 'team',
      visibility: 'private',
      members: 'hal, ivy',
    });
    expect(created).toMatchObject({ status: 200, body: { created: true } });

    await post('/rooms/team/grant', { users: ['jo'] });
    await post('/rooms/team/revoke', { users: 'hal' });

    const { body } = await get<RoomDetail>('/_admin/api/rooms/team');
    expect(body).toMatchObject({ visibility: 'private', owner: 'backend', members: ['backend', 'ivy', 'jo'] });
    expect((await post('/rooms/nowhere/grant', { users: ['jo'] })).body).toMatchObject({ error: 'unknown_room' });
    expect((await post('/rooms', { room: 'x', visibility: 'secret' })).status).toBe(400);
  });

  it('notifies a user and announces to everyone: a raw client receives both', async () => {
    const kim = await TestClient.connect(emulator.url, token('kim'), { name: 'kim' });

    const notified = await post<{ outcomes: { userId: string }[] }>('/notify', { users: ['kim'], title: 'Shipped' });
    const notification = await kim.next((f) => f.type === 'notification');
    const announced = await post<{ connections: number }>('/announce', { text: 'Maintenance at 2 am' });
    const announcement = await kim.next((f) => f.type === 'announcement');

    expect(notified.body.outcomes).toEqual([expect.objectContaining({ userId: 'kim' })]);
    expect(notification).toMatchObject({ body: { title: 'Shipped' } });
    expect(announced.body.connections).toBeGreaterThanOrEqual(1);
    expect(announcement).toMatchObject({ body: { text: 'Maintenance at 2 am' } });
    expect((await post('/notify', { users: [], text: 'x' })).status).toBe(400);
    expect((await post('/announce', {})).body).toMatchObject({ error: 'bad_request' });
    await kim.close();
  });

  it('mints a token the gateway accepts, validated as /dev/token validates', async () => {
    const { body } = await post<{ idToken: string; expiresIn: number }>('/tokens', {
      sub: 'leo',
      groups: ['admin'],
      ttlSeconds: 120,
    });
    const leo = await TestClient.connect(emulator.url, body.idToken);

    expect(body.expiresIn).toBe(120);
    expect((await get<StateView>('/_admin/api/state')).body.connections.find((c) => c.user === 'leo')).toMatchObject({
      groups: ['admin'],
    });
    expect((await post('/tokens', { sub: 'bad sub' })).body).toMatchObject({ error: 'bad_request' });
    expect((await post('/tokens', { sub: 'leo', ttlSeconds: 0 })).status).toBe(400);
    await leo.close();
  });

  it('disconnects a WebSocket connection as DeleteConnection does, and an MQTT client', async () => {
    const max = await TestClient.connect(emulator.url, token('max'));
    const id = (await get<StateView>('/_admin/api/state')).body.connections.find((c) => c.user === 'max')?.connectionId;
    const ned = await mqtt.connectAsync(emulator.mqttUrl ?? '', {
      clientId: 'ned',
      username: 'x',
      password: token('ned'),
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    const nedClosed = new Promise<void>((resolve) => ned.once('close', () => resolve()));

    const ws = await post(`/connections/${encodeURIComponent(id ?? '')}/disconnect`, {});
    const mq = await post('/connections/mqtt%3Aned/disconnect', {});

    expect(ws.status).toBe(200);
    expect(await max.closed).toEqual({ code: 1000, reason: 'Connection Closed Normally' });
    expect(mq.status).toBe(200);
    await nedClosed;
    ned.end(true);
    expect((await post('/connections/gone%3D/disconnect', {})).status).toBe(404);
  });

  it('reads and writes JSON only, and names the methods a path allows', async () => {
    const notJson = await fetch(`${emulator.httpUrl}/_admin/api/announce`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    const wrongMethod = await fetch(`${emulator.httpUrl}/_admin/api/state`, { method: 'DELETE' });

    expect(notJson.status).toBe(400);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET');
  });
});

describe('the event stream', () => {
  it('records connects, refusals with their reason, route calls and deliveries with user and room', async () => {
    const olga = await TestClient.connect(emulator.url, token('olga'), { name: 'olga' });
    const pia = await TestClient.connect(emulator.url, token('pia'), { name: 'pia' });
    await olga.request({ action: 'join', room: 'events-room' });
    await pia.request({ action: 'join', room: 'events-room' });
    await olga.request({ action: 'send', room: 'events-room', body: { text: 'hi' } });
    await pia.nextChat('events-room');
    expect(await TestClient.refusal(`${emulator.url}?token=not-a-token`)).toBe(403);
    expect(await TestClient.refusal(emulator.url)).toBe(401);

    const send = await eventWhere((e) => e.kind === 'SEND' && e.user === 'olga');
    const delivery = await eventWhere((e) => e.kind === 'POST' && e.user === 'pia');
    const forbidden = await eventWhere((e) => e.category === 'refusal' && e.status === '403');
    const unauthorized = await eventWhere((e) => e.category === 'refusal' && e.status === '401');

    expect(send).toMatchObject({ category: 'route', room: 'events-room', status: '200' });
    expect(delivery).toMatchObject({ category: 'delivery', status: '200' });
    expect(forbidden.reason).toContain('Deny policy');
    expect(unauthorized.reason).toContain('no token');
    const { body } = await get<{ events: AdminEvent[] }>(`/_admin/api/events?after=${send.id - 1}&limit=1`);
    expect(body.events).toHaveLength(1);
    await Promise.all([olga.close(), pia.close()]);
  });

  it('streams the backlog, then new events, over /_admin/events', async () => {
    const ws = new WebSocket(`${emulator.httpUrl.replace('http', 'ws')}/_admin/events`);
    const messages: { type: string; events?: AdminEvent[] }[] = [];
    const live = new Promise<AdminEvent>((resolve) => {
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type: string; events?: AdminEvent[] };
        messages.push(message);
        const found = message.events?.find((e) => e.kind === 'ADMIN' && e.text.includes('quinn'));
        if (message.type === 'events' && found) resolve(found);
      });
    });
    await new Promise((resolve) => ws.once('open', resolve));

    await post('/notify', { users: ['quinn'], text: 'x' });

    expect(await live).toMatchObject({ category: 'admin' });
    expect(messages[0]?.type).toBe('backlog');
    expect(messages[0]?.events?.length).toBeGreaterThan(0);
    ws.close();
  });
});

describe('faults', () => {
  it("without a fault registry, fails a connection's next @connections posts (the delivery retries)", async () => {
    const host = emulator as unknown as { faults?: unknown };
    const registry = host.faults;
    host.faults = undefined;
    try {
      const rae = await TestClient.connect(emulator.url, token('rae'), { name: 'rae' });
      await rae.request({ action: 'join', room: 'fault-room' });
      const id = (await get<StateView>('/_admin/api/state')).body.connections.find(
        (c) => c.user === 'rae',
      )?.connectionId;
      expect((await get<{ mode: string }>('/_admin/api/faults')).body.mode).toBe('post-faults');

      const injected = await post('/faults', { connectionId: id, statuses: [429] });
      await post('/chat', { user: 'sam', room: 'fault-room', text: 'through a 429' });

      expect(injected.status).toBe(200);
      expect(await rae.nextChat('fault-room')).toMatchObject({ from: 'sam' });
      expect(await eventWhere((e) => e.category === 'retry' && e.connectionId === id)).toMatchObject({
        status: '429',
      });
      expect((await post('/faults', { connectionId: id, statuses: [200] })).status).toBe(400);
      await rae.close();
    } finally {
      host.faults = registry;
    }
  });

  it("with the emulator's fault registry, adds, lists, removes and clears its rules", async () => {
    const host = emulator as unknown as { faults?: unknown };
    const registry = host.faults;
    const rules: Record<string, unknown>[] = [];
    host.faults = {
      add(rule: Record<string, unknown>) {
        if (rule.target === 'nowhere') throw new RangeError('unknown target "nowhere"');
        const fault = { id: `f${rules.length + 1}`, ...rule };
        rules.push(fault);
        return fault;
      },
      list: () => rules,
      remove(id: string) {
        const at = rules.findIndex((r) => r.id === id);
        if (at === -1) return false;
        rules.splice(at, 1);
        return true;
      },
      clear: () => rules.splice(0),
    };
    try {
      const added = await post('/faults', { target: 'dynamodb', fault: 'throttle', times: 2 });
      const refused = await post('/faults', { target: 'nowhere', fault: 'throttle' });
      const listed = await get<{ mode: string; rules: unknown[] }>('/_admin/api/faults');
      const removed = await fetch(`${emulator.httpUrl}/_admin/api/faults/f1`, { method: 'DELETE' });
      const missing = await fetch(`${emulator.httpUrl}/_admin/api/faults/f9`, { method: 'DELETE' });

      expect(added).toMatchObject({ status: 200, body: { fault: { id: 'f1', target: 'dynamodb' } } });
      expect(refused).toMatchObject({ status: 400, body: { message: 'unknown target "nowhere"' } });
      expect(listed.body).toMatchObject({
        mode: 'rules',
        rules: [{ id: 'f1', target: 'dynamodb', fault: 'throttle', times: 2 }],
      });
      expect(removed.status).toBe(200);
      expect(missing.status).toBe(404);
      await post('/faults', { target: 'connections', fault: '500' });
      expect((await fetch(`${emulator.httpUrl}/_admin/api/faults`, { method: 'DELETE' })).status).toBe(200);
      expect(rules).toEqual([]);
    } finally {
      host.faults = registry;
    }
  });
});

describe("the emulator's fault injection", () => {
  it('adds a DynamoDB throttle that fires once: the SDK retries and the chat still lands', async () => {
    const faulty = await startEmulator({ port: 0, logLevel: 'silent', faults: true });
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${faulty.httpUrl}/_admin/api${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    try {
      const added = await call('POST', '/faults', {
        target: 'dynamodb',
        fault: 'throttle',
        match: { operation: 'PutItem', sortKeyPrefix: 'SEQ#' },
        times: 1,
      });
      const chat = await call('POST', '/chat', { user: 'vic', room: 'throttled', text: 'through a throttle' });
      const faults = await call('GET', '/faults');
      const refused = await call('POST', '/faults', { target: 'dynamodb', fault: '410' });

      expect(added.status).toBe(200);
      expect(chat).toMatchObject({ status: 200, body: { ack: { seq: 1 } } });
      expect(faults.body).toMatchObject({
        mode: 'rules',
        rules: [{ target: 'dynamodb', fault: 'throttle', fired: 1, active: false }],
        targets: { dynamodb: expect.arrayContaining(['throttle']), connections: expect.arrayContaining(['429']) },
      });
      expect(refused).toMatchObject({ status: 400, body: { error: 'bad_request' } });
    } finally {
      await faulty.close();
    }
  });
});

describe('who may use it', () => {
  it('refuses a page of another origin or site, and actions that are not JSON', async () => {
    const otherOrigin = await get('/_admin/api/state', { origin: 'http://evil.example' });
    const otherPort = await get('/_admin/api/state', { origin: 'http://127.0.0.1:5173' });
    const crossSite = await get('/_admin/api/state', { 'sec-fetch-site': 'cross-site' });
    const sameSite = await post('/announce', { text: 'x' }, { 'sec-fetch-site': 'same-site' });
    const form = await fetch(`${emulator.httpUrl}/_admin/api/announce`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{"text":"csrf"}',
    });
    const own = await get('/_admin/api/clock', { origin: emulator.httpUrl, 'sec-fetch-site': 'same-origin' });

    for (const refused of [otherOrigin, otherPort, crossSite, sameSite]) {
      expect(refused).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    }
    expect(form.status).toBe(403);
    expect(own.status).toBe(200);
  });

  it('refuses the event stream to another origin', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${emulator.httpUrl.replace('http', 'ws')}/_admin/events`, {
        origin: 'http://evil.example',
      });
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      ws.once('open', () => reject(new Error('the stream opened')));
      ws.once('error', () => {});
    });
    expect(status).toBe(403);
  });

  it('refuses a request for a host name that is not loopback (DNS rebinding)', async () => {
    const { port } = new URL(emulator.httpUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/_admin/api/state', headers: { host: `rebound.example:${port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('checks the peer: beyond this machine only with allowRemote, same-origin rules either way', () => {
    const request = (remoteAddress: string, headers: Record<string, string>, method = 'GET') =>
      ({ socket: { remoteAddress }, headers, method }) as unknown as IncomingMessage;
    const local = { allowRemote: false };
    const remote = { allowRemote: true };

    expect(checkPeer(request('127.0.0.1', { host: 'localhost:4000' }), local)).toBeUndefined();
    expect(checkPeer(request('::ffff:127.0.0.1', { host: '[::1]:4000' }), local)).toBeUndefined();
    expect(checkPeer(request('192.168.1.20', { host: '192.168.1.10:4000' }), local)?.message).toContain(
      '--console-remote',
    );
    expect(checkPeer(request('127.0.0.1', { host: 'evil.example/x@127.0.0.1' }), local)).toBeDefined();
    expect(checkPeer(request('192.168.1.20', { host: 'devbox:4000' }), remote)).toBeUndefined();
    expect(
      checkApiRequest(request('192.168.1.20', { host: 'devbox:4000', origin: 'http://evil.example' }), remote),
    ).toBeDefined();
    expect(
      checkApiRequest(
        request(
          '192.168.1.20',
          { host: 'devbox:4000', origin: 'http://devbox:4000', 'content-type': 'application/json' },
          'POST',
        ),
        remote,
      ),
    ).toBeUndefined();
  });

  it("prints the console's URL in the banner, and who it answers", async () => {
    const options = { dataDir: undefined, externalDb: false };
    const remote = await startEmulator({ port: 0, logLevel: 'silent', console: { allowRemote: true } });
    try {
      expect(banner(emulator, { host: '127.0.0.1', ...options })).toContain(`Console        ${emulator.httpUrl}/  (`);
      expect(banner(emulator, { host: '0.0.0.0', ...options })).toContain('this machine only; --console-remote');
      expect(banner(emulator, { host: '0.0.0.0', ...options })).not.toContain('The console is open to the network');
      expect(banner(remote, { host: '0.0.0.0', ...options })).toContain('The console is open to the network');
    } finally {
      await remote.close();
    }
  });

  it('is off with console: false: no page, no API, no event stream, no console clock', async () => {
    const bare = await startEmulator({ port: 0, logLevel: 'silent', console: false });
    try {
      const page = await fetch(`${bare.httpUrl}/`);
      const api = await fetch(`${bare.httpUrl}/_admin/api/state`);
      const stream = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${bare.httpUrl.replace('http', 'ws')}/_admin/events`);
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          res.resume();
        });
        ws.once('error', () => resolve(0));
      });

      expect(page.status).toBe(404);
      expect(api.status).toBe(404);
      expect(stream).toBe(404);
      expect(bare.consoleUrl).toBeUndefined();
      expect(bare.console).toBeUndefined();
      expect(banner(bare, { host: '127.0.0.1', dataDir: undefined, externalDb: false })).not.toContain('Console');
    } finally {
      await bare.close();
    }
  });
});

describe('the clock', () => {
  let timed: Emulator;

  beforeAll(async () => {
    timed = await startEmulator({ port: 0, logLevel: 'silent' });
  });

  afterAll(async () => {
    await timed?.close();
  });

  const advance = async (minutes: number) => {
    const response = await fetch(`${timed.httpUrl}/_admin/api/clock/advance`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ minutes }),
    });
    return {
      status: response.status,
      body: (await response.json()) as { closedConnections: number; expiredTokenConnections: number },
    };
  };

  it('moves forward: a token expires, and the token sweeper, due by then, closes its idle connection with token_expired', async () => {
    const { idToken } = timed.issuer.mintPair({ sub: 'tess', ttlSeconds: 120 });
    const tess = await TestClient.connect(timed.url, idToken);
    const { idToken: longer } = timed.issuer.mintPair({ sub: 'theo', ttlSeconds: 3600 });
    const theo = await TestClient.connect(timed.url, longer);
    await tess.request({ action: 'ping' });
    const sweeps = timed.scheduler.runs(TOKEN_SWEEPER_HANDLER);

    const moved = await advance(3);

    expect(moved.status).toBe(200);
    expect(moved.body.expiredTokenConnections).toBe(1);
    expect(timed.scheduler.runs(TOKEN_SWEEPER_HANDLER)).toBe(sweeps + 1);
    expect(await tess.next((f) => f.type === 'error')).toMatchObject({ code: 'token_expired' });
    expect((await tess.closed).code).toBe(1000);
    expect(await theo.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    expect(timed.console?.clock.offsetMs).toBe(3 * 60_000);
    await theo.close();
  });

  it("applies API Gateway's 2-hour cut when moved past it, and refuses moving back", async () => {
    const { idToken } = timed.issuer.mintPair({ sub: 'uma', ttlSeconds: 86_400 });
    const uma = await TestClient.connect(timed.url, idToken);

    const moved = await advance(121);

    expect(moved.body.closedConnections).toBe(1);
    expect(await uma.closed).toEqual({ code: 1001, reason: 'Going away' });
    expect((await advance(-5)).status).toBe(400);
    expect((await advance(0)).status).toBe(400);
  });
});

describe('parts', () => {
  it('an adjustable clock runs on its source plus an offset that only grows', () => {
    let source = 1000;
    const clock = createAdjustableClock(() => source);
    clock.advance(500);
    source = 2000;

    expect(clock()).toBe(2500);
    expect(clock.offsetMs).toBe(500);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });

  it.each([
    ['CONNECT', 'Zx1= alice 101 12ms', { category: 'connect', connectionId: 'Zx1=', user: 'alice', status: '101' }],
    ['CONNECT', 'Zx1= - 401 3ms', { category: 'refusal', status: '401' }],
    ['POST', 'Zx1= bob 131B 410', { category: 'gone', user: 'bob', status: '410' }],
    ['POST', 'Zx1= bob 131B 500', { category: 'retry', status: '500' }],
    [
      'DISCONN',
      "Zx1= bob 1001 'Going away' -> 200 4ms",
      { category: 'disconnect', reason: "closed 1001 'Going away'" },
    ],
    [
      'IOTDENY',
      'carl.phone iot:Subscribe arn:aws:iot:us-east-1:0:topicfilter/rt/users/dan/rooms/x (no statement allows it)',
      { category: 'refusal', user: 'carl', connectionId: 'mqtt:carl.phone', room: 'x' },
    ],
    ['MQTT', 'CONNECT eve refused: not authorized', { category: 'refusal', user: 'eve' }],
    ['IOTDATA', 'publish rt/users/fay/rooms/lobby qos1 90B -> 1', { category: 'delivery', user: 'fay', room: 'lobby' }],
    [
      'FAULT',
      'f1 dynamodb throttle #1 PutItem MSGS#lobby SEQ#0000000000000001',
      { category: 'fault', room: 'lobby', reason: 'rule f1: dynamodb throttle' },
    ],
    ['FAULT', 'f2 connections 429 #2 PostToConnection Zx1=', { category: 'fault', connectionId: 'Zx1=' }],
    ['FAULT', 'f3 dynamodb 500 #1 Query ROOM#town.hall MEMBER#ann', { category: 'fault', room: 'town.hall' }],
    ['FAULT', 'f4 dynamodb 500 #1 GetItem CONN#Zx1= META', { category: 'fault', reason: 'rule f4: dynamodb 500' }],
    ['SOMETHING', 'new text', { category: 'other', text: 'new text' }],
  ] as const)('reads a %s line: %s', (kind, text, expected) => {
    expect(describeLine('info', kind, text)).toMatchObject(expected);
  });

  it('keeps the newest events in a ring and pages them by id', () => {
    const bus = new AdminEventBus({ clock: () => 0, size: 3 });
    for (const text of ['a', 'b', 'c', 'd', 'e']) bus.push('info', 'ADMIN', text);

    expect(bus.recent().map((e) => [e.id, e.text])).toEqual([
      [3, 'c'],
      [4, 'd'],
      [5, 'e'],
    ]);
    expect(bus.recent({ after: 3 }).map((e) => e.id)).toEqual([4, 5]);
    expect(bus.recent({ limit: 1 }).map((e) => e.id)).toEqual([5]);
    expect(bus.recent({ after: 1, limit: 2 }).map((e) => e.id)).toEqual([3, 4]);
    expect(bus.recent({ after: 5 })).toEqual([]);
  });

  it('names every category the console filters by', () => {
    expect(new Set(ADMIN_EVENT_CATEGORIES).size).toBe(ADMIN_EVENT_CATEGORIES.length);
    expect(describeLine('info', 'SEND', 'Zx1= amy 200 3ms', { room: 'lobby' })).toMatchObject({
      category: 'route',
      room: 'lobby',
      user: 'amy',
    });
  });
});
