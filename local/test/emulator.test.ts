/**
 * The whole emulator with the real Lambda handlers: tokens from `/dev/token`, the authorizer verifying
 * them against the served JWKS, routes reaching DynamoDB and `@connections` through the AWS SDK.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import {
  banner,
  type Emulator,
  functionEnvironment,
  isLoopbackHost,
  isLoopbackUrl,
  startEmulator,
} from '@viba-realtime/local';
import { EMULATOR_ENV_OVERRIDES, ENV, FUNCTION_ENV, IOT_HANDLERS, WS_HANDLERS } from '@viba-realtime/protocol';
import { CognitoJwtVerifier } from 'aws-jwt-verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closed, nextMessage, openSocket, refusalStatus } from './support/stub-gateway.js';

let emulator: Emulator;
const lines: string[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logLevel: 'info', log: (line) => lines.push(line) });
});

afterAll(async () => {
  await emulator.close();
});

async function token(query: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${emulator.httpUrl}/dev/token?${query}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('/dev/token and JWKS', () => {
  it('mints a pair the served JWKS verifies', async () => {
    const { status, body } = await token('sub=alice&groups=admin,staff&ttl=600');
    const jwks = await (await fetch(emulator.jwksUri)).json();
    const verifier = CognitoJwtVerifier.create({
      userPoolId: emulator.userPoolId,
      tokenUse: null,
      clientId: emulator.clientId,
    });
    verifier.cacheJwks(jwks);

    expect(status).toBe(200);
    expect(body.expiresIn).toBe(600);
    await expect(verifier.verify(String(body.idToken))).resolves.toMatchObject({
      sub: 'alice',
      'cognito:groups': ['admin', 'staff'],
    });
    await expect(verifier.verify(String(body.accessToken))).resolves.toMatchObject({ token_use: 'access' });
  });

  it.each([
    ['', 'sub'],
    ['sub=al%20ice', 'sub'],
    ['sub=alice&ttl=0', 'ttl'],
    ['sub=alice&ttl=86401', 'ttl'],
    ['sub=alice&ttl=1.5', 'ttl'],
    ['sub=alice&groups=ok,bad%20group', 'groups'],
    ['sub=alice&groups=a,,b', 'groups'],
    ['sub=alice&username=%3Cx%3E', 'username'],
  ])('answers 400 naming the bad parameter for "%s"', async (query, parameter) => {
    const { status, body } = await token(query);
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_parameter', parameter });
  });

  it('answers CORS on /dev/token and the JWKS, so a page on another origin can sign in; not on /dev/config', async () => {
    const origin = { origin: 'http://127.0.0.1:5173' };
    for (const path of ['/dev/token?sub=alice', '/dev/token?sub=al%20ice', new URL(emulator.jwksUri).pathname]) {
      const response = await fetch(`${emulator.httpUrl}${path}`, { headers: origin });
      expect(response.headers.get('access-control-allow-origin'), path).toBe('*');
      await response.arrayBuffer();
    }
    const preflight = await fetch(`${emulator.httpUrl}/dev/token?sub=alice`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-demo' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('GET');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('x-demo');

    const config = await fetch(`${emulator.httpUrl}/dev/config`, { headers: origin });
    expect(config.status).toBe(200);
    expect(config.headers.get('access-control-allow-origin')).toBeNull();
    await config.arrayBuffer();
  });
});

describe('WebSocket through the real handlers', () => {
  it('refuses no token with 401 and a foreign token with 403', async () => {
    const foreign = emulator.issuer.mint({ sub: 'eve', tokenUse: 'id', audience: 'someoneelse' });
    expect(await refusalStatus(emulator.url)).toBe(401);
    expect(await refusalStatus(`${emulator.url}?token=${foreign}`)).toBe(403);
  });

  it('connects with a /dev/token token, answers a ping, and delivers @connections posts', async () => {
    const { body } = await token('sub=alice');
    const before = new Set(emulator.gateway.connectionIds());
    const ws = await openSocket(`${emulator.url}?token=${body.idToken}`);
    const id = emulator.gateway.connectionIds().find((c) => !before.has(c)) as string;

    ws.send(JSON.stringify({ action: 'ping', id: 'p1' }));
    const pong = await nextMessage(ws);
    const management = new ApiGatewayManagementApiClient({
      endpoint: emulator.connectionsEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const pushed = nextMessage(ws);
    await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: '{"type":"hello"}' }));
    management.destroy();

    expect(pong).toMatchObject({ type: 'pong' });
    expect(await pushed).toEqual({ type: 'hello' });
    ws.close();
    await closed(ws);
    await emulator.gateway.settled();
    expect(lines.some((l) => /CONNECT +\S+ alice 101 \d+ms$/.test(l))).toBe(true);
    expect(lines.some((l) => /DISCONN +\S+ alice 1005/.test(l))).toBe(true);
  });

  it('joins and sends in a room: the sender gets the ack, another member the chat frame', async () => {
    const socketOf = (sub: string) =>
      openSocket(`${emulator.url}?token=${emulator.issuer.mint({ sub, tokenUse: 'id' })}`);
    const [alice, bob] = await Promise.all([socketOf('alice'), socketOf('bob')]);
    for (const [ws, id] of [
      [alice, 'j1'],
      [bob, 'j2'],
    ] as const) {
      const joined = nextMessage(ws);
      ws.send(JSON.stringify({ action: 'join', room: 'lobby', id }));
      expect(await joined).toMatchObject({ type: 'ack', action: 'join', room: 'lobby' });
    }

    const ack = nextMessage(alice);
    const chat = nextMessage(bob);
    alice.send(JSON.stringify({ action: 'send', room: 'lobby', id: 'm1', body: { text: 'hi' } }));

    expect(await ack).toMatchObject({ type: 'ack', action: 'send', ref: 'm1', seq: 1 });
    expect(await chat).toMatchObject({ type: 'chat', room: 'lobby', from: 'alice', seq: 1, body: { text: 'hi' } });
    alice.close();
    bob.close();
    await Promise.all([closed(alice), closed(bob)]);
  });
});

describe('each function gets its own settings', () => {
  it('what the stack gives it, the emulator endpoints and AWS_*: the presence rule gets no queue, the WebSocket authorizer no table', async () => {
    const emulator = await startEmulator({ port: 0, logLevel: 'silent' });
    try {
      const presence = functionEnvironment(emulator.env, IOT_HANDLERS.presence);
      expect(Object.keys(presence).toSorted()).toEqual(
        [
          ...FUNCTION_ENV[IOT_HANDLERS.presence],
          ...EMULATOR_ENV_OVERRIDES,
          'AWS_REGION',
          'AWS_ACCESS_KEY_ID',
          'AWS_SECRET_ACCESS_KEY',
        ]
          .filter((name, i, all) => all.indexOf(name) === i)
          .toSorted(),
      );
      expect(presence).not.toHaveProperty(ENV.fanoutQueueUrl);
      expect(emulator.env).toHaveProperty(ENV.fanoutQueueUrl);
      expect(functionEnvironment(emulator.env, WS_HANDLERS.authorizer)).not.toHaveProperty(ENV.tableName);
      expect(Object.isFrozen(presence)).toBe(true);
    } finally {
      await emulator.close();
    }
  });
});

describe('configurations', () => {
  it('keeps tokens and data valid across a restart with the same dataDir', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'viba-emulator-'));
    try {
      const first = await startEmulator({ port: 0, dataDir, logLevel: 'silent' });
      const token = first.issuer.mint({ sub: 'ivy', tokenUse: 'id' });
      await first.close();

      const second = await startEmulator({ port: 0, dataDir, logLevel: 'silent' });
      try {
        const ws = await openSocket(`${second.url}?token=${token}`);
        ws.close();
        await closed(ws);
        expect(second.issuer.kid).toBe(first.issuer.kid);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("accepts only access tokens with tokenUse: ['access']", async () => {
    const accessOnly = await startEmulator({
      port: 0,
      dynamodbEndpoint: emulator.dynamodbEndpoint,
      tokenUse: ['access'],
      logLevel: 'silent',
    });
    try {
      const { idToken, accessToken } = accessOnly.issuer.mintPair({ sub: 'kim' });
      expect(accessOnly.env.VIBA_TOKEN_USE).toBe('access');
      // The banner's sample must be a token that connects.
      expect(banner(accessOnly, { host: '127.0.0.1', dataDir: undefined, externalDb: true })).toContain(
        'Sample access token for alice',
      );
      // A valid token of the wrong use is a Deny from the real authorizer: 403, not 401.
      expect(await refusalStatus(`${accessOnly.url}?token=${idToken}`)).toBe(403);
      const ws = await openSocket(`${accessOnly.url}?token=${accessToken}`);
      ws.close();
      await closed(ws);
    } finally {
      await accessOnly.close();
    }
  });

  it('accepts both token uses by default and refuses an empty tokenUse before starting', async () => {
    expect(emulator.env.VIBA_TOKEN_USE).toBe('id,access');
    await expect(startEmulator({ port: 0, tokenUse: [], logLevel: 'silent' })).rejects.toThrow(/tokenUse/);
  });

  it('uses an external DynamoDB endpoint when given one', async () => {
    const other = await startEmulator({ port: 0, dynamodbEndpoint: emulator.dynamodbEndpoint, logLevel: 'silent' });
    try {
      const ws = await openSocket(`${other.url}?token=${other.issuer.mint({ sub: 'jack', tokenUse: 'id' })}`);
      expect(other.dynamodbEndpoint).toBe(emulator.dynamodbEndpoint);
      expect(other.env.VIBA_DYNAMODB_ENDPOINT).toBe(emulator.dynamodbEndpoint);
      ws.close();
      await closed(ws);
    } finally {
      await other.close();
    }
  });
});

describe('start banner', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['[::ffff:7f00:1]', true],
    ['[::ffff:a00:1]', false],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.10', false],
    ['::ffff:10.0.0.1', false],
    ['my-laptop.local', false],
  ])('treats %s as loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it('recognises a loopback URL in the form URL gives it', () => {
    expect(isLoopbackUrl('http://[::ffff:127.0.0.1]:8000')).toBe(true);
    expect(isLoopbackUrl('https://dynamodb.us-east-1.amazonaws.com')).toBe(false);
  });

  it('warns that anyone can mint tokens when the host is not loopback, and only then', () => {
    const onNetwork = banner(emulator, { host: '0.0.0.0', dataDir: undefined, externalDb: false });
    const local = banner(emulator, { host: '127.0.0.1', dataDir: undefined, externalDb: false });

    expect(onNetwork).toMatch(/WARNING: listening on 0\.0\.0\.0/);
    expect(onNetwork).toMatch(
      /Anyone who can reach this port can call \/dev\/token and mint valid tokens for ANY user/,
    );
    expect(local).not.toMatch(/WARNING/);
    expect(local).toContain(`${emulator.httpUrl}/dev/token`);
  });
});
