/**
 * Issue 8, point 2: every token attack on every way in, refused at the edge with nothing written.
 *
 * The table ({@link ATTACKS}) runs on each {@link CHANNELS} entry: the emulated API Gateway WebSocket upgrade
 * (documented answers: 401 when no token is found where the authorizer reads one, 403 for a token that is not
 * acceptable; docs/PROTOCOL.md "Connecting") and an MQTT CONNECT to the emulated IoT Core over TCP and over
 * WebSocket, MQTT 3.1.1 and 5 (CONNACK return code 5 / reason code 0x87 Not authorized). Each refusal is
 * checked to have left nothing behind: no connection record of the user (the `$connect` route or IoT's
 * `connected` lifecycle event would have written one), no live connection at the gateway or the broker, and,
 * at the end, no item of the table mentioning any attacker at all.
 *
 * Tokens are crafted here (`support/auth-tokens.ts`): the default emulator keeps its signing key in a
 * temporary `dataDir`, so forged claims are signed by the real key and differ from an accepted token only in
 * the attacked claim. Two more emulators accept one token use each (`tokenUse: ['access']` / `['id']`).
 *
 * Existing coverage this suite gathers in one table (and does not replace): `test/chat.test.ts` (garbage,
 * expired, other pool, other client on the WebSocket), `test/iot-device-sdk.test.ts` and
 * `test/cross-channel.test.ts` (some of them on MQTT), `lambdas/test/iot-authorizer.test.ts` (the handler
 * alone), `local/test/dev-issuer.test.ts` (the verifier alone).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CognitoTokenVerifier,
  createDynamoDbStore,
  InvalidTokenError,
  type SweepOutcome,
} from '@viba-realtime/lambdas';
import { type Emulator, startEmulator } from '@viba-realtime/local';
import { clientIdFor, type ServerFrame, TOKEN_SWEEPER_HANDLER } from '@viba-realtime/protocol';
import { createPublisher, fetchLocalPublisherConfig } from '@viba-realtime/publisher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttPeer } from '../support/mqtt-peer.js';
import { TestClient } from '../support/ws-client.js';
import { CHANNELS, type Channel, itemsMentioning, knock, NOT_AUTHORIZED } from './support/auth-channels.js';
import {
  decodeJwt,
  type ForeignKey,
  foreignKey,
  type IssuerKey,
  type JwtPart,
  readIssuerKey,
  signHs256,
  signRs256,
  tamperPayload,
  tamperSignature,
  unsignedJwt,
} from './support/auth-tokens.js';

type Target = 'default' | 'accessOnly' | 'idOnly';

let dataDir: string;
let offsetMs = 0;
/** The default emulator's clock: the wall clock, moved forward by the expiry tests. */
const clock = () => Date.now() + offsetMs;
const emulators = {} as Record<Target, Emulator>;
let key: IssuerKey;
let attacker: ForeignKey;

const OTHER_POOL = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other';
const HOUR = 3600;

function store(target: Target = 'default') {
  const emulator = emulators[target];
  return createDynamoDbStore({
    tableName: emulator.tableName,
    region: 'us-east-1',
    endpoint: emulator.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    clock,
  });
}

/** The claims of a token the default emulator accepts, to be changed by one attack. */
function claims(sub: string, tokenUse: 'id' | 'access' = 'id'): JwtPart {
  return decodeJwt(emulators.default.issuer.mint({ sub, tokenUse })).payload;
}

const issuerHeader = (): JwtPart => ({ kid: key.kid, alg: 'RS256' });
/** Signs `payload` with the default emulator's real key: only the claims can be wrong. */
const genuine = (payload: JwtPart): string => signRs256(issuerHeader(), payload, key.privateKey);
const nowSeconds = () => Math.floor(clock() / 1000);

interface Attack {
  name: string;
  /** The token the attacker presents as user `sub` (the user named in it). */
  token(sub: string): string;
  /** The emulator attacked. @default 'default' */
  target?: Target;
  /** `misplaced`: in a place the channel does not read (see `Channel.misplace`); `none`: no token at all. */
  placement?: 'standard' | 'misplaced' | 'none';
  /** Other users the token was made for, who must not get a connection either. */
  alsoNamed?(sub: string): string[];
}

const ATTACKS: Attack[] = [
  { name: 'no token at all', placement: 'none', token: () => '' },
  {
    name: 'a valid token where the channel does not read one',
    placement: 'misplaced',
    token: (sub) => emulators.default.issuer.mint({ sub, tokenUse: 'id' }),
  },
  { name: 'alg none, unsigned', token: (sub) => unsignedJwt({ alg: 'none', typ: 'JWT' }, claims(sub)) },
  {
    name: 'alg none with the kid and a genuine signature kept',
    token: (sub) => {
      const [, payload, signature] = emulators.default.issuer.mint({ sub, tokenUse: 'id' }).split('.');
      const header = Buffer.from(JSON.stringify({ kid: key.kid, alg: 'none' })).toString('base64url');
      return `${header}.${payload}.${signature}`;
    },
  },
  {
    name: "HS256 with the issuer's public key (PEM) as the HMAC secret",
    token: (sub) => signHs256({ kid: key.kid, alg: 'HS256' }, claims(sub), key.publicPem),
  },
  {
    name: "HS256 with the issuer's public JWK (as the JWKS serves it) as the HMAC secret",
    token: (sub) => signHs256({ kid: key.kid, alg: 'HS256' }, claims(sub), key.publicJwkJson),
  },
  {
    name: "RS256 signed by another key, under the issuer's kid",
    token: (sub) => signRs256(issuerHeader(), claims(sub), attacker.privateKey),
  },
  {
    name: 'RS256 signed by another key, under its own kid',
    token: (sub) => signRs256({ kid: attacker.kid, alg: 'RS256' }, claims(sub), attacker.privateKey),
  },
  {
    name: 'RS256 signed by another key, embedded in the header (jwk, jku)',
    token: (sub) =>
      signRs256(
        { kid: attacker.kid, alg: 'RS256', jwk: attacker.publicJwk, jku: 'http://127.0.0.1:1/jwks.json' },
        claims(sub),
        attacker.privateKey,
      ),
  },
  {
    name: 'a wrong issuer (another host, the same pool path), signed by the real key',
    token: (sub) => genuine({ ...claims(sub), iss: `https://evil.example.com/${emulators.default.userPoolId}` }),
  },
  {
    name: 'another user pool',
    token: (sub) => emulators.default.issuer.mint({ sub, tokenUse: 'id', issuer: OTHER_POOL }),
  },
  {
    name: 'another app client (ID token aud)',
    token: (sub) => emulators.default.issuer.mint({ sub, tokenUse: 'id', audience: 'someotherclient' }),
  },
  {
    name: 'another app client (access token client_id)',
    token: (sub) => emulators.default.issuer.mint({ sub, tokenUse: 'access', audience: 'someotherclient' }),
  },
  {
    name: 'an ID token where only access tokens are accepted',
    target: 'accessOnly',
    token: (sub) => emulators.accessOnly.issuer.mint({ sub, tokenUse: 'id' }),
  },
  {
    name: 'an access token where only ID tokens are accepted',
    target: 'idOnly',
    token: (sub) => emulators.idOnly.issuer.mint({ sub, tokenUse: 'access' }),
  },
  {
    name: 'expired a minute ago',
    token: (sub) => emulators.default.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: -60 }),
  },
  {
    name: 'not yet valid (nbf in an hour)',
    token: (sub) => genuine({ ...claims(sub), nbf: nowSeconds() + HOUR }),
  },
  {
    name: 'issued in the future (iat and auth_time in an hour)',
    token: (sub) => {
      const iat = nowSeconds() + HOUR;
      return genuine({ ...claims(sub), iat, auth_time: iat, exp: iat + HOUR });
    },
  },
  {
    name: 'without an exp claim, signed by the real key',
    token: (sub) => {
      const { exp: _exp, ...rest } = claims(sub);
      return genuine(rest);
    },
  },
  {
    name: 'payload tampered after signing (sub swapped for another user)',
    token: (sub) =>
      tamperPayload(emulators.default.issuer.mint({ sub: `${sub}-self`, tokenUse: 'id' }), (payload) => {
        payload.sub = sub;
        payload['cognito:username'] = sub;
      }),
    alsoNamed: (sub) => [`${sub}-self`],
  },
  {
    name: 'payload tampered after signing (exp extended by a day)',
    token: (sub) =>
      tamperPayload(emulators.default.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: -60 }), (payload) => {
        payload.exp = Number(payload.exp) + 24 * HOUR;
      }),
  },
  {
    name: 'signature tampered',
    token: (sub) => tamperSignature(emulators.default.issuer.mint({ sub, tokenUse: 'id' })),
  },
];

/** One row of the table: an attack on a channel, with its own user. */
interface Case {
  attack: Attack;
  channel: Channel;
  sub: string;
}

const CASES: Case[] = ATTACKS.flatMap((attack, index) =>
  CHANNELS.map((channel) => ({ attack, channel, sub: `atk-${index}-${channel.tag}` })),
);

function presentation(c: Case) {
  const token = c.attack.token(c.sub);
  switch (c.attack.placement ?? 'standard') {
    case 'none':
      return c.channel.kind === 'mqtt' ? { username: 'any' } : {};
    case 'misplaced':
      return c.channel.misplace(token);
    case 'standard':
      return c.channel.present(token);
  }
}

/** The documented refusal of the channel for this attack. */
function expectedRefusal(c: Case) {
  if (c.channel.kind === 'ws') {
    // 401 when the authorizer finds no token where it reads one, 403 for a token it refuses.
    return { accepted: false, status: (c.attack.placement ?? 'standard') === 'standard' ? 403 : 401 };
  }
  return { accepted: false, connack: NOT_AUTHORIZED[c.channel.version ?? 5] };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'viba-auth-attacks-'));
  attacker = foreignKey();
  [emulators.default, emulators.accessOnly, emulators.idOnly] = await Promise.all([
    // Sweeps run when a test asks (`scheduler.run`), never between two steps of a test that moves the clock.
    startEmulator({ port: 0, logLevel: 'silent', clock, dataDir, schedules: false }),
    startEmulator({ port: 0, logLevel: 'silent', tokenUse: ['access'] }),
    startEmulator({ port: 0, logLevel: 'silent', tokenUse: ['id'] }),
  ]);
  key = readIssuerKey(join(dataDir, 'dev-issuer-key.json'));
});

afterAll(async () => {
  await Promise.all(Object.values(emulators).map((e) => e.close()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('control: the same channels admit a valid token', () => {
  it.each(
    CHANNELS.flatMap((channel) =>
      (['default', 'accessOnly', 'idOnly'] as const).map((target) => ({ channel, target })),
    ),
  )('$channel.name, $target emulator', async ({ channel, target }) => {
    const sub = `ok-${target}-${channel.tag}`;
    const tokenUse = target === 'accessOnly' ? 'access' : 'id';
    const emulator = emulators[target];
    const answer = await knock(
      emulator,
      channel,
      clientIdFor(sub, 'c'),
      channel.present(emulator.issuer.mint({ sub, tokenUse })),
    );
    expect(answer.accepted).toBe(true);
    // The record a refusal must not leave: written by $connect, or by IoT's `connected` lifecycle event.
    await expect.poll(() => store(target).listUserConnections(sub), { interval: 20 }).toHaveLength(1);
    if (answer.accepted) await answer.close();
    await expect.poll(() => store(target).listUserConnections(sub), { interval: 20 }).toEqual([]);
  });
});

describe.each(ATTACKS)('$name', (attack) => {
  it.each(CASES.filter((c) => c.attack === attack).map((c) => ({ ...c, via: c.channel.name })))(
    'is refused at the edge with nothing written: $via',
    async (c) => {
      const target = c.attack.target ?? 'default';
      const emulator = emulators[target];
      const clientId = clientIdFor(c.sub, 'c');
      const gatewayBefore = emulator.gateway.connectionIds().length;

      const answer = await knock(emulator, c.channel, clientId, presentation(c));
      if (answer.accepted) await answer.close();
      expect(answer).toEqual(expectedRefusal(c));

      expect(emulator.gateway.connectionIds()).toHaveLength(gatewayBefore);
      expect(emulator.broker?.client(clientId)).toBeUndefined();
      expect(emulator.iot?.session(clientId)).toBeUndefined();
      for (const sub of [c.sub, ...(c.attack.alsoNamed?.(c.sub) ?? [])]) {
        expect(await store(target).listUserConnections(sub)).toEqual([]);
      }
      expect(await store(target).getConnection(`mqtt:${clientId}`)).toBeUndefined();
    },
  );
});

describe('a connection outliving its token', () => {
  it('WebSocket: the first frame after expiry gets token_expired, the connection is closed, nothing is stored', async () => {
    const emulator = emulators.default;
    const token = emulator.issuer.mint({ sub: 'exp-ws', tokenUse: 'id', ttlSeconds: 120 });
    const client = await TestClient.connect(emulator.url, token, { name: 'exp-ws' });
    expect(await client.request({ action: 'join', room: 'exp-room' })).toMatchObject({ type: 'ack' });
    offsetMs += 180_000;
    try {
      client.sendRaw(JSON.stringify({ action: 'send', room: 'exp-room', id: 'late', body: { text: 'too late' } }));
      expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'token_expired', ref: 'late' });
      await client.closed;
      await emulator.gateway.settled();
      expect(await store().listUserConnections('exp-ws')).toEqual([]);
      expect((await store().listMessages('exp-room', { limit: 10 })).messages).toEqual([]);
    } finally {
      offsetMs -= 180_000;
    }
  });

  // Found by this suite: API Gateway keeps an idle connection open past its token's expiry (it is closed when it
  // next sends), and fan-outs used to reach it until then. A WebSocket subscription now expires with the token.
  it('WebSocket: an idle connection gets no room traffic once its token expired', async () => {
    const emulator = emulators.default;
    const mint = (sub: string, ttlSeconds: number) => emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds });
    const idle = await TestClient.connect(emulator.url, mint('exp-idle', 120), { name: 'exp-idle' });
    const talker = await TestClient.connect(emulator.url, mint('exp-talker', HOUR), { name: 'exp-talker' });
    const witness = await TestClient.connect(emulator.url, mint('exp-witness', HOUR), { name: 'exp-witness' });
    try {
      for (const client of [idle, talker, witness]) {
        expect(await client.request({ action: 'join', room: 'exp-idle-room' })).toMatchObject({ type: 'ack' });
      }
      offsetMs += 180_000;
      const members = (await store().listRoomSubscriptions('exp-idle-room')).map((s) => s.sub).sort();
      expect(members).toEqual(['exp-talker', 'exp-witness']);
      const ack = await talker.request({ action: 'send', room: 'exp-idle-room', body: { text: 'after expiry' } });
      expect(ack).toMatchObject({ type: 'ack', action: 'send' });
      // The fan-out is done when the ack arrives; the witness's copy shows it was delivered.
      expect((await witness.nextChat('exp-idle-room')).body).toEqual({ text: 'after expiry' });
      expect(idle.received.filter((f) => f.type === 'chat')).toEqual([]);
    } finally {
      offsetMs -= 180_000;
      await Promise.all([idle.close(), talker.close(), witness.close()]);
    }
  });

  /** Connects `sub` with a token good for two minutes; the tests then move the clock three minutes on. */
  function shortLivedClient(sub: string): Promise<TestClient> {
    const emulator = emulators.default;
    return TestClient.connect(emulator.url, emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: 120 }), {
      name: sub,
    });
  }

  /** A backend publisher on the tests' clock (as the console's is on the emulator's). */
  async function publisherOnTestClock() {
    return createPublisher(await fetchLocalPublisherConfig(emulators.default.httpUrl), { clock });
  }

  const isTokenExpiredFrame = (f: ServerFrame) => f.type === 'error' && f.code === 'token_expired';

  // Found by this suite: notifications and announcements reached an idle connection past its token (they list
  // the user's connections and the audience, not room subscriptions) until it next sent or API Gateway's
  // 10-minute idle timeout.
  it('WebSocket: a notification to a user never reaches their connection past its token; it is told token_expired and closed, their other device gets it, the inbox keeps it', async () => {
    const emulator = emulators.default;
    const publisher = await publisherOnTestClock();
    const stale = await shortLivedClient('exp-notify');
    const fresh = await TestClient.connect(
      emulator.url,
      emulator.issuer.mint({ sub: 'exp-notify', tokenUse: 'id', ttlSeconds: HOUR }),
      { name: 'exp-notify-fresh' },
    );
    offsetMs += 180_000;
    try {
      const [outcome] = await publisher.notify('exp-notify', { text: 'for valid tokens only' });
      expect(outcome?.delivery).toEqual({ delivered: 1, gone: 0, failed: 0, expired: 1 });
      expect(await fresh.next((f) => f.type === 'notification')).toMatchObject({
        body: { text: 'for valid tokens only' },
      });
      const told = await stale.next(isTokenExpiredFrame);
      expect(told).not.toHaveProperty('ref');
      await stale.closed;
      expect(stale.received.filter((f) => f.type === 'notification')).toEqual([]);
      await emulator.gateway.settled();
      // `$disconnect` removed the closed connection; the fresh one stays.
      expect((await store().listUserConnections('exp-notify')).length).toBe(1);
      const inbox = await store().listNotifications('exp-notify', { limit: 10, unreadOnly: true });
      expect(inbox.notifications.map((n) => n.body)).toEqual([{ text: 'for valid tokens only' }]);
    } finally {
      offsetMs -= 180_000;
      publisher.close();
      await Promise.all([stale.close(), fresh.close()]);
    }
  });

  it('WebSocket: an announcement never reaches a connection past its token; it is told token_expired and closed, the announcement is kept for a later read', async () => {
    const emulator = emulators.default;
    const publisher = await publisherOnTestClock();
    const stale = await shortLivedClient('exp-announce');
    const witness = await TestClient.connect(
      emulator.url,
      emulator.issuer.mint({ sub: 'exp-announce-witness', tokenUse: 'id', ttlSeconds: HOUR }),
      { name: 'exp-announce-witness' },
    );
    offsetMs += 180_000;
    try {
      const outcome = await publisher.announce({ text: 'valid tokens only' });
      expect(outcome.duplicate).toBe(false);
      const seen = await witness.next((f) => f.type === 'announcement' && f.id === outcome.id);
      expect(seen).toMatchObject({ body: { text: 'valid tokens only' } });
      expect(await stale.next(isTokenExpiredFrame)).toMatchObject({ code: 'token_expired' });
      await stale.closed;
      expect(stale.received.filter((f) => f.type === 'announcement')).toEqual([]);
      // The reconnect with a fresh token reads what it missed.
      const later = await TestClient.connect(
        emulator.url,
        emulator.issuer.mint({ sub: 'exp-announce', tokenUse: 'id', ttlSeconds: HOUR }),
        { name: 'exp-announce-later' },
      );
      try {
        const page = await later.request({ action: 'announcements', body: { since: outcome.ts } });
        expect(page).toMatchObject({ type: 'announcements', announcements: [{ id: outcome.id }] });
      } finally {
        await later.close();
      }
    } finally {
      offsetMs -= 180_000;
      publisher.close();
      await Promise.all([stale.close(), witness.close()]);
    }
  });

  it('WebSocket: the token sweeper closes an idle connection past its token, removes one that vanished without $disconnect, and leaves valid ones alone', async () => {
    const emulator = emulators.default;
    const idle = await shortLivedClient('exp-sweep-idle');
    const vanished = await shortLivedClient('exp-sweep-vanished');
    const valid = await TestClient.connect(
      emulator.url,
      emulator.issuer.mint({ sub: 'exp-sweep-valid', tokenUse: 'id', ttlSeconds: HOUR }),
      { name: 'exp-sweep-valid' },
    );
    offsetMs += 180_000;
    try {
      const [gone] = await store().listUserConnections('exp-sweep-vanished');
      if (!gone) throw new Error('no record of the vanishing connection');
      // Dropped without `$disconnect` (API Gateway runs it best-effort): only its record is left.
      expect(emulator.gateway.vanish(gone.connectionId)).toBe(true);

      const outcome = (await emulator.scheduler.run(TOKEN_SWEEPER_HANDLER)) as SweepOutcome;
      expect(outcome.failed).toBe(0);
      expect(outcome.closed).toBeGreaterThanOrEqual(1);
      expect(outcome.gone).toBeGreaterThanOrEqual(1);
      expect(await idle.next(isTokenExpiredFrame)).toMatchObject({ code: 'token_expired' });
      await idle.closed;
      await emulator.gateway.settled();
      expect(await store().listUserConnections('exp-sweep-idle')).toEqual([]);
      expect(await store().listUserConnections('exp-sweep-vanished')).toEqual([]);
      expect((await store().listUserConnections('exp-sweep-valid')).length).toBe(1);
      expect(valid.socket.readyState).toBe(valid.socket.OPEN);
      expect(await valid.request({ action: 'ping' })).toMatchObject({ type: 'pong' });

      // Nothing is left for the next run to close: the index forgets a connection with its record.
      expect(await emulator.scheduler.run(TOKEN_SWEEPER_HANDLER)).toMatchObject({ closed: 0, gone: 0, failed: 0 });
    } finally {
      offsetMs -= 180_000;
      await Promise.all([idle.close(), vanished.close(), valid.close()]);
    }
  });

  it.each([4, 5] as const)(
    "MQTT %i: IoT cuts the connection at the authorizer's disconnectAfterInSeconds, never past the token's exp",
    async (version) => {
      const emulator = emulators.default;
      const sub = `exp-mqtt${version}`;
      const token = emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: HOUR });
      const exp = Number(decodeJwt(token).payload.exp);
      const peer = await MqttPeer.connect(emulator.mqttUrl ?? '', {
        sub,
        suffix: 'c',
        token,
        protocolVersion: version,
      });
      const reason = new Promise<number | undefined>((resolve) =>
        peer.client.once('disconnect', (packet) => resolve(packet.reasonCode)),
      );
      const closed = new Promise<void>((resolve) => peer.client.once('close', () => resolve()));
      try {
        await expect.poll(() => store().getConnection(`mqtt:${peer.clientId}`), { interval: 20 }).toBeDefined();
        const session = emulator.iot?.session(peer.clientId);
        if (!session) throw new Error('no IoT session');
        // The authorizer answers the token's remaining time rounded down to whole seconds, and IoT counts it
        // from the CONNECT: the cut comes at `exp`, late by at most the authorizer-to-CONNACK latency (a few ms
        // here, when the authorizer ran on a whole second; see the issue 8 report).
        expect(session.disconnectAt).toBeLessThanOrEqual(exp * 1000 + 1_000);
        expect(session.disconnectAt).toBeGreaterThan(exp * 1000 - 2_000);

        // A refresh with time left on the token keeps the connection.
        offsetMs = session.refreshAt - Date.now();
        await emulator.iot?.runDueTimers();
        expect(session.refreshes).toBe(1);
        expect(peer.client.connected).toBe(true);

        // At disconnectAfterInSeconds IoT cuts it.
        offsetMs = session.disconnectAt - Date.now();
        await emulator.iot?.runDueTimers();
        await closed;
        // MQTT 5 is told why (0xA0 Maximum connect time); a 3.1.1 client sees the connection close.
        if (version === 5) expect(await reason).toBe(0xa0);
        // IoT's `disconnected` lifecycle event removes the connection record.
        await expect.poll(() => store().getConnection(`mqtt:${peer.clientId}`), { interval: 20 }).toBeUndefined();
      } finally {
        offsetMs = 0;
        peer.client.end(true);
      }
    },
  );

  it('MQTT: a policy refresh that finds under 300 s left on the token cuts the connection then (0x87), early rather than late', async () => {
    const emulator = emulators.default;
    const sub = 'exp-refresh';
    const token = emulator.issuer.mint({ sub, tokenUse: 'id', ttlSeconds: 400 });
    const peer = await MqttPeer.connect(emulator.mqttUrl ?? '', { sub, suffix: 'c', token, protocolVersion: 5 });
    const reason = new Promise<number | undefined>((resolve) =>
      peer.client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    try {
      const session = emulator.iot?.session(peer.clientId);
      if (!session) throw new Error('no IoT session');
      offsetMs = session.refreshAt - Date.now();
      await emulator.iot?.runDueTimers();
      expect(await reason).toBe(0x87);
      expect(clock()).toBeLessThan(session.disconnectAt);
    } finally {
      offsetMs = 0;
      peer.client.end(true);
    }
  });
});

describe('the token verifier on its own (regressions of fixes made here)', () => {
  // See the report of issue 8: the verifier accepted what aws-jwt-verify does not check.
  const verifier = () =>
    new CognitoTokenVerifier({
      userPoolId: emulators.default.userPoolId,
      clientIds: [emulators.default.clientId],
      jwksUri: emulators.default.jwksUri,
    });

  it('refuses a token issued in the future and one without exp or sub', async () => {
    const v = verifier();
    const iat = nowSeconds() + HOUR;
    await expect(v.verify(genuine({ ...claims('reg-a'), iat, exp: iat + HOUR }))).rejects.toBeInstanceOf(
      InvalidTokenError,
    );
    const { exp: _exp, ...noExp } = claims('reg-b');
    await expect(v.verify(genuine(noExp))).rejects.toBeInstanceOf(InvalidTokenError);
    const { sub: _sub, ...noSub } = claims('reg-c');
    await expect(v.verify(genuine(noSub))).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('still accepts a token issued a few seconds ahead of its clock (skew)', async () => {
    const iat = nowSeconds() + 5;
    await expect(verifier().verify(genuine({ ...claims('reg-d'), iat, exp: iat + HOUR }))).resolves.toMatchObject({
      sub: 'reg-d',
    });
  });
});

describe('afterwards', () => {
  it('no item of any table mentions an attacker', async () => {
    for (const target of ['default', 'accessOnly', 'idOnly'] as const) {
      expect(await itemsMentioning(emulators[target], 'atk-')).toEqual([]);
    }
  });
});
