/**
 * The IoT custom authorizer against the emulator's real JWKS and DynamoDB, with events shaped as IoT Core
 * sends them, and its policies proven with the emulator's IoT policy evaluator (the one the broker enforces).
 */
import { randomUUID } from 'node:crypto';
import { createDevIssuer, type Emulator, startEmulator } from '@viba-realtime/local';
import { ENV, IOT_LIMITS, topics } from '@viba-realtime/protocol';
import type { IoTCustomAuthorizerEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compileAuthorizerPolicies,
  evaluate,
  type IotAction,
  type IotPolicyContext,
  iotArn,
} from '../../local/src/iot/policy-evaluator.js';
import { buildIotPolicy, buildIotPolicyDocuments, IotPolicyBuildError } from '../src/auth/iot-policy.js';
import { ConfigError } from '../src/config.js';
import {
  createIotAuthorizerHandler,
  extractIotToken,
  type IotAuthorizerResult,
  principalIdFor,
} from '../src/handlers/iot-authorizer.js';
import { createDynamoDbStore, type DynamoDbStore } from '../src/store/dynamodb.js';

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';

/** A clock the test moves by hand, on a whole second of the real time (aws-jwt-verify checks `exp` against
 * the wall clock, so minted tokens must be current). */
function manualClock() {
  let now = Math.floor(Date.now() / 1000) * 1000;
  return {
    now: () => now,
    set: (ms: number) => {
      now = ms;
    },
  };
}

let connectionCounter = 0;
const connectionMetadata = () => ({ id: `conn-${++connectionCounter}` });

/** MQTT over TLS with a username and password, as IoT builds the event (the password base64-encoded). */
function mqttEvent(options: { password?: string; clientId?: string; username?: string }): IoTCustomAuthorizerEvent {
  return {
    signatureVerified: false,
    protocols: ['tls', 'mqtt'],
    protocolData: {
      tls: { serverName: 'example-ats.iot.us-east-1.amazonaws.com' },
      mqtt: {
        username: options.username ?? 'any-user?x-amz-customauthorizer-name=viba',
        ...(options.password === undefined ? {} : { password: Buffer.from(options.password).toString('base64') }),
        // IoT includes the client id "only when the device sends the value".
        ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
      } as { clientId: string },
    },
    connectionMetadata: connectionMetadata(),
  };
}

/** MQTT over WebSocket: the upgrade request's headers and query string, plus the CONNECT's client id. */
function wsEvent(options: { queryString?: string; headers?: Record<string, string>; clientId?: string }) {
  const event: IoTCustomAuthorizerEvent = {
    signatureVerified: false,
    protocols: ['tls', 'http', 'mqtt'],
    protocolData: {
      tls: { serverName: 'example-ats.iot.us-east-1.amazonaws.com' },
      http: {
        headers: {
          host: 'example-ats.iot.us-east-1.amazonaws.com',
          'sec-websocket-protocol': 'mqtt',
          ...options.headers,
        },
        queryString: options.queryString ?? '',
      },
      mqtt: (options.clientId === undefined ? {} : { clientId: options.clientId }) as { clientId: string },
    },
    connectionMetadata: connectionMetadata(),
  };
  return event;
}

describe('IoT custom authorizer', () => {
  let emulator: Emulator;
  let store: DynamoDbStore;
  let authorize: ReturnType<typeof createIotAuthorizerHandler>;
  const clock = manualClock();
  const startedAt = clock.now();
  const alice = randomUUID();
  const bob = randomUUID();

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, logLevel: 'silent', clock: clock.now });
    authorize = createIotAuthorizerHandler({ ...emulator.env, [ENV.iotAccountId]: ACCOUNT }, { clock: clock.now });
    store = createDynamoDbStore({
      tableName: emulator.tableName,
      region: REGION,
      endpoint: emulator.dynamodbEndpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await store.addMember('lobby', alice);
    await store.addMember('dev', alice);
    await store.addMember('secret', bob);
  });

  afterAll(async () => {
    store?.destroy();
    await emulator?.close();
  });

  /** Runs each test at the start time unless it moves the clock itself. */
  const atStart = () => clock.set(startedAt);

  function expectAccepted(result: IotAuthorizerResult, sub: string) {
    expect(result.isAuthenticated).toBe(true);
    expect(result.principalId).toBe(sub.replaceAll('-', ''));
    expect(result.principalId).toMatch(/^[A-Za-z0-9]{1,128}$/);
    expect(result.disconnectAfterInSeconds).toBe(3600);
    expect(result.refreshAfterInSeconds).toBe(300);
    expect(result.policyDocuments.length).toBeGreaterThan(0);
    for (const document of result.policyDocuments) {
      expect(typeof document).toBe('string');
      expect(JSON.parse(document)).toMatchObject({ Version: '2012-10-17' });
    }
  }

  function expectRefused(result: IotAuthorizerResult) {
    expect(result).toEqual({
      isAuthenticated: false,
      principalId: 'anonymous',
      disconnectAfterInSeconds: 300,
      refreshAfterInSeconds: 300,
      policyDocuments: [],
    });
  }

  describe('accepts a valid token', () => {
    it("ID and access tokens in the MQTT password, with any username and the user's client ids", async () => {
      atStart();
      const { idToken, accessToken } = emulator.issuer.mintPair({ sub: alice, groups: ['staff'] });
      expectAccepted(await authorize(mqttEvent({ password: idToken, clientId: alice })), alice);
      expectAccepted(await authorize(mqttEvent({ password: accessToken, clientId: `${alice}.phone` })), alice);
      expectAccepted(await authorize(mqttEvent({ password: idToken, username: '' })), alice);
    });

    it('ID and access tokens in the WebSocket query string, or a Bearer header', async () => {
      atStart();
      const { idToken, accessToken } = emulator.issuer.mintPair({ sub: alice });
      expectAccepted(await authorize(wsEvent({ queryString: `?token=${idToken}`, clientId: `${alice}.tab1` })), alice);
      expectAccepted(await authorize(wsEvent({ queryString: `?x=1&token=${accessToken}` })), alice);
      expectAccepted(await authorize(wsEvent({ headers: { Authorization: `Bearer ${accessToken}` } })), alice);
    });

    it('finds the token where IoT puts it, the password first', () => {
      const password = Buffer.from('from-password').toString('base64');
      expect(extractIotToken({ protocolData: { mqtt: { clientId: 'c', password } } })).toBe('from-password');
      expect(
        extractIotToken({
          protocolData: {
            http: { headers: { authorization: 'Bearer from-header' }, queryString: '?token=from-query' },
          },
        }),
      ).toBe('from-query');
      expect(
        extractIotToken({ protocolData: { http: { headers: { AUTHORIZATION: 'from-header' }, queryString: '' } } }),
      ).toBe('from-header');
      expect(extractIotToken({ token: 'from-iot', protocolData: {} })).toBe('from-iot');
      expect(extractIotToken({ protocolData: { mqtt: { clientId: 'c', password: '' } } })).toBeUndefined();
    });
  });

  describe('refuses', () => {
    it('a connection without a token', async () => {
      atStart();
      expectRefused(await authorize(mqttEvent({ clientId: alice })));
      expectRefused(await authorize(wsEvent({ queryString: '?other=1', clientId: alice })));
      expectRefused(await authorize(wsEvent({ headers: { Authorization: 'Bearer ' } })));
    });

    it('garbage, in the password or the query string', async () => {
      atStart();
      expectRefused(await authorize(mqttEvent({ password: 'not-a-jwt', clientId: alice })));
      expectRefused(await authorize(mqttEvent({ password: 'a.b.c' })));
      expectRefused(await authorize(wsEvent({ queryString: '?token=eyJhbGciOiJSUzI1NiJ9.e30.AAAA' })));
    });

    it('an expired token, by the wall clock or by the injected clock', async () => {
      // Minted two hours ago with an hour to live: aws-jwt-verify refuses it against the wall clock.
      clock.set(startedAt - 7_200_000);
      const stale = emulator.issuer.mint({ sub: alice, tokenUse: 'id' });
      atStart();
      expectRefused(await authorize(mqttEvent({ password: stale, clientId: alice })));
      // Valid by the wall clock, expired by the handler's clock.
      const current = emulator.issuer.mint({ sub: alice, tokenUse: 'id' });
      clock.set(startedAt + 3_600_000);
      expectRefused(await authorize(mqttEvent({ password: current, clientId: alice })));
    });

    it('tokens of another pool, another app client or another signing key', async () => {
      atStart();
      const otherPool = emulator.issuer.mint({
        sub: alice,
        tokenUse: 'id',
        issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeOther1',
      });
      const otherClient = emulator.issuer.mint({ sub: alice, tokenUse: 'access', audience: 'someotherclient' });
      const otherKey = createDevIssuer({
        region: REGION,
        userPoolId: emulator.userPoolId,
        clientId: emulator.clientId,
        clock: clock.now,
      }).mint({ sub: alice, tokenUse: 'id' });
      for (const token of [otherPool, otherClient, otherKey]) {
        expectRefused(await authorize(mqttEvent({ password: token, clientId: alice })));
      }
    });

    it("a client id that is not the user's", async () => {
      atStart();
      const token = emulator.issuer.mint({ sub: alice, tokenUse: 'id' });
      for (const clientId of [
        bob,
        `${bob}.${alice}`,
        `${alice}-phone`,
        `${alice}x`,
        `x${alice}`,
        '+',
        `${alice}.${'x'.repeat(128)}`,
      ]) {
        expectRefused(await authorize(mqttEvent({ password: token, clientId })));
      }
      expectRefused(await authorize(wsEvent({ queryString: `?token=${token}`, clientId: bob })));
    });

    it('a sub that cannot be written into topics', async () => {
      atStart();
      for (const sub of ['a/b', '+', '#', 'a*', 'x'.repeat(129)]) {
        expectRefused(await authorize(mqttEvent({ password: emulator.issuer.mint({ sub, tokenUse: 'id' }) })));
      }
    });
  });

  describe('disconnectAfterInSeconds', () => {
    it("tracks the token's expiry, within IoT's 300 s to 24 h", async () => {
      atStart();
      const tokenFor = (ttlSeconds: number) => emulator.issuer.mint({ sub: alice, tokenUse: 'id', ttlSeconds });
      const in1000 = tokenFor(1000);
      const result = await authorize(mqttEvent({ password: in1000 }));
      expect(result.disconnectAfterInSeconds).toBe(1000);
      expect(result.refreshAfterInSeconds).toBe(300);

      clock.set(startedAt + 600_500);
      const later = await authorize(mqttEvent({ password: in1000 }));
      // 399.5 s left: rounded down, never past the token.
      expect(later.disconnectAfterInSeconds).toBe(399);
      expect(later.isAuthenticated).toBe(true);

      atStart();
      const twoDays = await authorize(mqttEvent({ password: tokenFor(172_800) }));
      expect(twoDays.disconnectAfterInSeconds).toBe(IOT_LIMITS.maxAuthorizerSeconds);
      expect(twoDays.refreshAfterInSeconds).toBe(300);
      expect((await authorize(mqttEvent({ password: tokenFor(300) }))).disconnectAfterInSeconds).toBe(300);
    });

    it('refuses a token with less than 300 s left rather than let the connection outlive it', async () => {
      atStart();
      expectRefused(
        await authorize(mqttEvent({ password: emulator.issuer.mint({ sub: alice, tokenUse: 'id', ttlSeconds: 299 }) })),
      );
      const token = emulator.issuer.mint({ sub: alice, tokenUse: 'id', ttlSeconds: 3600 });
      clock.set(startedAt + 3_301_000);
      expectRefused(await authorize(mqttEvent({ password: token })));
    });
  });

  describe('the policy', () => {
    let policies: ReturnType<typeof compileAuthorizerPolicies>;
    const context: IotPolicyContext = { clientId: '' };

    beforeAll(async () => {
      atStart();
      const token = emulator.issuer.mint({ sub: alice, tokenUse: 'id', groups: ['staff', 'bad/group', 'a+b'] });
      const result = await authorize(mqttEvent({ password: token, clientId: alice }));
      expect(result.isAuthenticated).toBe(true);
      // The emulator's parser enforces IoT's limits (10 documents of 2,048 characters) and syntax.
      policies = compileAuthorizerPolicies(result.policyDocuments);
      context.clientId = alice;
    });

    const resourceFor = (action: IotAction, name: string) =>
      action === 'iot:Connect'
        ? iotArn.client(REGION, ACCOUNT, name)
        : action === 'iot:Subscribe'
          ? iotArn.topicfilter(REGION, ACCOUNT, name)
          : iotArn.topic(REGION, ACCOUNT, name);
    const decide = (action: IotAction, name: string, ctx: IotPolicyContext = context) =>
      evaluate(policies, { action, resource: resourceFor(action, name) }, ctx);

    it('allows what the design allows', () => {
      const allowed: [IotAction, string][] = [
        ['iot:Connect', alice],
        ['iot:Connect', `${alice}.phone`],
        ['iot:Subscribe', topics.responses(alice)],
        ['iot:Subscribe', topics.userRoomsFilter(alice)],
        ['iot:Subscribe', topics.inbox(alice)],
        ['iot:Subscribe', topics.announcements],
        ['iot:Subscribe', topics.groupAnnouncements('staff')],
        ['iot:Receive', topics.responses(alice)],
        ['iot:Receive', topics.userRoom(alice, 'lobby')],
        // Delivery is on the user's own topic, for rooms joined after the connect too (no refresh needed).
        ['iot:Receive', topics.userRoom(alice, 'joined-later')],
        ['iot:Receive', topics.inbox(alice)],
        ['iot:Receive', topics.announcements],
        ['iot:Receive', topics.groupAnnouncements('staff')],
        ['iot:Publish', topics.requests(alice)],
        ['iot:Publish', topics.roomSend('lobby')],
        ['iot:Publish', topics.roomSend('dev')],
      ];
      for (const [action, name] of allowed)
        expect({ action, name, decision: decide(action, name) }).toMatchObject({ decision: 'allow' });
    });

    it("denies other users' topics, other client ids, announcements publishing, non-member rooms and wildcards", () => {
      const denied: [IotAction, string][] = [
        ['iot:Connect', bob],
        ['iot:Connect', `${bob}.phone`],
        ['iot:Connect', `${alice}x`],
        ['iot:Connect', '+'],
        ['iot:Subscribe', topics.inbox(bob)],
        ['iot:Subscribe', topics.responses(bob)],
        ['iot:Subscribe', topics.userRoomsFilter(bob)],
        ['iot:Subscribe', topics.userRoom(bob, 'secret')],
        ['iot:Subscribe', 'rt/users/+/inbox'],
        ['iot:Subscribe', 'rt/rooms/+/send'],
        ['iot:Subscribe', topics.roomSend('lobby')],
        ['iot:Subscribe', 'rt/#'],
        ['iot:Subscribe', '#'],
        ['iot:Subscribe', `rt/users/${alice}/#`],
        ['iot:Subscribe', 'rt/announcements/#'],
        ['iot:Subscribe', topics.groupAnnouncements('admins')],
        ['iot:Subscribe', 'rt/announcements/groups/bad/group'],
        ['iot:Receive', topics.inbox(bob)],
        ['iot:Receive', topics.responses(bob)],
        ['iot:Receive', topics.userRoom(bob, 'lobby')],
        ['iot:Receive', topics.roomSend('lobby')],
        ['iot:Receive', topics.groupAnnouncements('admins')],
        ['iot:Publish', topics.announcements],
        ['iot:Publish', topics.groupAnnouncements('staff')],
        ['iot:Publish', topics.inbox(alice)],
        ['iot:Publish', topics.inbox(bob)],
        ['iot:Publish', topics.responses(alice)],
        ['iot:Publish', topics.userRoom(alice, 'lobby')],
        ['iot:Publish', topics.userRoom(bob, 'lobby')],
        ['iot:Publish', topics.requests(bob)],
        ['iot:Publish', topics.roomSend('secret')],
        ['iot:Publish', 'rt/rooms/+/send'],
        ['iot:RetainPublish', topics.requests(alice)],
      ];
      for (const [action, name] of denied)
        expect({ action, name, decision: decide(action, name) }).toMatchObject({ decision: 'deny' });
    });

    it('gives a client id of `+` nothing more (no iot:ClientId variable in the resources)', () => {
      const plus: IotPolicyContext = { clientId: '+' };
      expect(decide('iot:Subscribe', 'rt/users/+/inbox', plus)).toBe('deny');
      expect(decide('iot:Subscribe', 'rt/users/+/rooms/+', plus)).toBe('deny');
      expect(decide('iot:Receive', topics.inbox(bob), plus)).toBe('deny');
      for (const document of buildIotPolicyDocuments({
        region: REGION,
        accountId: ACCOUNT,
        sub: alice,
        groups: [],
        memberRooms: [],
      })) {
        expect(document).not.toContain('${');
      }
    });

    it('grants the send topic of a room joined since, at the next authorization (refresh)', async () => {
      atStart();
      const token = emulator.issuer.mint({ sub: alice, tokenUse: 'id' });
      expect(decide('iot:Publish', topics.roomSend('fresh'))).toBe('deny');
      await store.addMember('fresh', alice);
      const refreshed = compileAuthorizerPolicies((await authorize(mqttEvent({ password: token }))).policyDocuments);
      const resource = iotArn.topic(REGION, ACCOUNT, topics.roomSend('fresh'));
      expect(evaluate(refreshed, { action: 'iot:Publish', resource }, context)).toBe('allow');
    });
  });

  it('fits a member of 300 rooms in at most 10 documents of at most 2,048 characters', async () => {
    atStart();
    const carol = randomUUID();
    const rooms = Array.from({ length: 300 }, (_, i) => `room-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < rooms.length; i += 50) {
      await Promise.all(rooms.slice(i, i + 50).map((room) => store.addMember(room, carol)));
    }
    const token = emulator.issuer.mint({ sub: carol, tokenUse: 'access', groups: ['staff', 'ops'] });
    const result = await authorize(mqttEvent({ password: token, clientId: `${carol}.1` }));
    expect(result.isAuthenticated).toBe(true);
    expect(result.policyDocuments.length).toBeLessThanOrEqual(IOT_LIMITS.maxPolicyDocuments);
    for (const document of result.policyDocuments) {
      expect(document.length).toBeLessThanOrEqual(IOT_LIMITS.maxPolicyDocumentChars);
    }
    const policies = compileAuthorizerPolicies(result.policyDocuments);
    const ctx = { clientId: `${carol}.1` };
    const publish = (name: string) =>
      evaluate(policies, { action: 'iot:Publish', resource: iotArn.topic(REGION, ACCOUNT, name) }, ctx);
    // Rooms are read in name order and granted while they fit; the rest go through the requests topic.
    const granted = rooms.filter((room) => publish(topics.roomSend(room)) === 'allow');
    expect(granted.length).toBeGreaterThan(200);
    expect(granted).toEqual(rooms.slice(0, granted.length));
    expect(publish(topics.roomSend('room-299'))).toBe('deny');
    expect(publish(topics.requests(carol))).toBe('allow');
    const receive = (name: string) =>
      evaluate(policies, { action: 'iot:Receive', resource: iotArn.topic(REGION, ACCOUNT, name) }, ctx);
    expect(receive(topics.userRoom(carol, 'room-299'))).toBe('allow');
    expect(receive(topics.groupAnnouncements('ops'))).toBe('allow');
  });

  it('refuses to build without a valid account id', () => {
    expect(() => createIotAuthorizerHandler({ ...emulator.env, [ENV.iotAccountId]: undefined })).toThrow(ConfigError);
    expect(() => createIotAuthorizerHandler({ ...emulator.env, [ENV.iotAccountId]: '12345' })).toThrow(ConfigError);
    expect(() =>
      createIotAuthorizerHandler({ ...emulator.env, [ENV.iotAccountId]: ACCOUNT, AWS_REGION: 'us-east-1:*' }),
    ).toThrow(ConfigError);
  });
});

describe('buildIotPolicy', () => {
  const base = { region: REGION, accountId: ACCOUNT, groups: [] as string[], memberRooms: [] as string[] };

  it('splits across documents when one is full, keeping every grant', () => {
    const rooms = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const policy = buildIotPolicy(
      { ...base, sub: 'alice', memberRooms: rooms },
      { maxDocuments: 10, maxDocumentChars: 700 },
    );
    expect(policy.documents.length).toBeGreaterThan(2);
    expect(policy.grantedRooms).toEqual(rooms);
    expect(policy.omittedRooms).toEqual([]);
    for (const document of policy.documents) expect(document.length).toBeLessThanOrEqual(700);
    const compiled = compileAuthorizerPolicies(policy.documents, { maxDocumentChars: 700 });
    for (const room of rooms) {
      const resource = iotArn.topic(REGION, ACCOUNT, topics.roomSend(room));
      expect(evaluate(compiled, { action: 'iot:Publish', resource }, { clientId: 'alice' })).toBe('allow');
    }
  });

  it('reports the rooms that do not fit and the groups it skipped', () => {
    const rooms = Array.from({ length: 400 }, (_, i) => `room-${i}`);
    const policy = buildIotPolicy({
      ...base,
      sub: randomUUID(),
      groups: ['staff', 'a/b', '#', 'staff'],
      memberRooms: rooms,
    });
    expect(policy.documents.length).toBe(IOT_LIMITS.maxPolicyDocuments);
    expect(policy.skippedGroups).toEqual(['a/b', '#']);
    expect(policy.grantedRooms.length + policy.omittedRooms.length).toBe(400);
    expect(policy.omittedRooms.length).toBeGreaterThan(0);
    expect(policy.omittedRooms[0]).toBe(rooms[policy.grantedRooms.length]);
  });

  it("spills a long sub's own grants over two documents instead of failing", () => {
    const sub = 'x'.repeat(128);
    const policy = buildIotPolicy({ ...base, sub, groups: ['staff'], memberRooms: ['lobby'] });
    for (const document of policy.documents)
      expect(document.length).toBeLessThanOrEqual(IOT_LIMITS.maxPolicyDocumentChars);
    const compiled = compileAuthorizerPolicies(policy.documents);
    const resource = iotArn.topicfilter(REGION, ACCOUNT, topics.groupAnnouncements('staff'));
    expect(evaluate(compiled, { action: 'iot:Subscribe', resource }, { clientId: sub })).toBe('allow');
  });

  it('refuses a sub, region or account that would change the meaning of the ARNs', () => {
    for (const sub of ['a*', 'a?', '+', 'a/b', '']) {
      expect(() => buildIotPolicy({ ...base, sub })).toThrow(IotPolicyBuildError);
    }
    expect(() => buildIotPolicy({ ...base, sub: 'a', accountId: '*' })).toThrow(IotPolicyBuildError);
    expect(() => buildIotPolicy({ ...base, sub: 'a', region: '*' })).toThrow(IotPolicyBuildError);
  });
});

describe('principalIdFor', () => {
  it('derives 1-128 alphanumerics from any usable sub, keeping distinct subs apart', () => {
    const uuid = '6f1c2a9e-8d4b-4c1e-9f3a-2b7d5e6c8a10';
    expect(principalIdFor(uuid)).toBe('6f1c2a9e8d4b4c1e9f3a2b7d5e6c8a10');
    expect(principalIdFor('alice')).toBe('alice');
    const subs = ['a-b', 'ab', 'a.b', 'a_b', '---', 'x'.repeat(128), `${'y'.repeat(127)}.`];
    const ids = subs.map(principalIdFor);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9]{1,128}$/);
    expect(new Set(ids).size).toBe(subs.length);
  });
});
