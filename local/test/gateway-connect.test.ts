/**
 * The upgrade path of the emulated API Gateway: authorizer outcomes map to 401/403/500, `$connect`'s
 * status decides, and the events carry every field API Gateway sets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closed,
  nextMessage,
  openSocket,
  refusalStatus,
  type StubGateway,
  startStubGateway,
} from './support/stub-gateway.js';

let stub: StubGateway;

beforeAll(async () => {
  stub = await startStubGateway();
});

afterAll(async () => {
  await stub.close();
});

/** Opens a connection and finds the id the gateway gave it. */
async function openWithId(query: string) {
  const before = new Set(stub.gateway.connectionIds());
  const ws = await openSocket(`${stub.url}${query}`);
  const id = stub.gateway.connectionIds().find((c) => !before.has(c));
  if (id === undefined) throw new Error('no new connection id');
  return { ws, id };
}

function routeKeysOf(connectionId: string): string[] {
  return stub.routeEvents
    .filter((e) => e.requestContext.connectionId === connectionId)
    .map((e) => e.requestContext.routeKey);
}

describe('upgrade', () => {
  it.each([
    ['no token (authorizer throws Unauthorized)', '', 401],
    ['a Deny policy', '?token=deny', 403],
    ['an authorizer that fails otherwise', '?token=boom', 500],
  ])('answers HTTP %s with the right status and runs no route', async (_name, query, status) => {
    const before = stub.routeEvents.length;
    expect(await refusalStatus(`${stub.url}${query}`)).toBe(status);
    await stub.gateway.settled();
    expect(stub.routeEvents.length).toBe(before);
  });

  it('refuses with the status $connect answers', async () => {
    expect(await refusalStatus(`${stub.url}?token=carol&refuse=429`)).toBe(429);
    expect(stub.gateway.connectionIds()).toEqual([]);
  });

  it('answers 404 off the stage path', async () => {
    expect(await refusalStatus(stub.url.replace('/local', '/prod'))).toBe(404);
  });

  it('builds the authorizer and $connect events the way API Gateway does', async () => {
    const ws = await openSocket(`${stub.url}?token=alice&x=1&x=2`);
    const authEvent = stub.authorizerEvents.at(-1);
    const connectEvent = stub.routeEvents.at(-1);

    expect(authEvent).toMatchObject({
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:us-east-1:000000000000:localapi01/local/$connect',
      queryStringParameters: { token: 'alice', x: '2' },
      multiValueQueryStringParameters: { token: ['alice'], x: ['1', '2'] },
      requestContext: {
        routeKey: '$connect',
        eventType: 'CONNECT',
        stage: 'local',
        messageDirection: 'IN',
        apiId: 'localapi01',
      },
    });
    expect(authEvent?.headers).toMatchObject({ Host: expect.any(String), 'X-Forwarded-For': '127.0.0.1' });
    expect(authEvent?.requestContext.requestTime).toMatch(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    expect(authEvent?.requestContext.connectionId).toMatch(/^[A-Za-z0-9+/]{15}=$/);
    expect(connectEvent?.requestContext).toMatchObject({
      routeKey: '$connect',
      eventType: 'CONNECT',
      connectionId: authEvent?.requestContext.connectionId,
      connectedAt: authEvent?.requestContext.connectedAt,
      identity: { sourceIp: '127.0.0.1' },
      authorizer: { principalId: 'alice', sub: 'alice', username: 'alice', integrationLatency: expect.any(Number) },
    });
    expect(connectEvent?.requestContext).not.toHaveProperty('messageId');
    ws.close();
    await closed(ws);
  });
});

describe('messages', () => {
  it('selects the route on body.action, falls back to $default, and sends two-way answers back', async () => {
    const ws = await openSocket(`${stub.url}?token=dave`);

    ws.send(JSON.stringify({ action: 'ping' }));
    const ping = await nextMessage(ws);
    ws.send(JSON.stringify({ action: 'dance' }));
    const unknown = await nextMessage(ws);
    ws.send('not json');
    const text = await nextMessage(ws);

    expect(ping).toEqual({ route: 'ping', body: '{"action":"ping"}' });
    expect(unknown).toMatchObject({ route: '$default' });
    expect(text).toEqual({ route: '$default', body: 'not json' });
    const message = stub.routeEvents.at(-1);
    expect(message).toMatchObject({
      isBase64Encoded: false,
      requestContext: { eventType: 'MESSAGE', authorizer: { sub: 'dave' } },
    });
    expect(message?.requestContext.messageId).toMatch(/=$/);
    ws.close();
    await closed(ws);
  });

  it("answers a failing route with API Gateway's Internal server error frame", async () => {
    const ws = await openSocket(`${stub.url}?token=erin`);
    ws.send('"throw"');
    expect(await nextMessage(ws)).toMatchObject({ message: 'Internal server error', connectionId: expect.any(String) });
    ws.close();
    await closed(ws);
  });
});

describe('$disconnect', () => {
  it('runs once with the client close code and reason', async () => {
    const { ws, id } = await openWithId('?token=frank');
    const disconnect = stub.nextDisconnect();

    ws.close(4000, 'bye');
    const event = await disconnect;
    await stub.gateway.settled();

    expect(event.requestContext).toMatchObject({
      routeKey: '$disconnect',
      eventType: 'DISCONNECT',
      disconnectStatusCode: 4000,
      disconnectReason: 'bye',
    });
    expect(event.headers).toMatchObject({ 'x-api-key': '', 'X-Forwarded-For': '' });
    expect(routeKeysOf(id).filter((k) => k === '$disconnect')).toHaveLength(1);
  });

  it("reports API Gateway's reason when the client sent no status", async () => {
    const ws = await openSocket(`${stub.url}?token=gina`);
    const disconnect = stub.nextDisconnect();
    ws.close();
    expect((await disconnect).requestContext).toMatchObject({
      disconnectStatusCode: 1005,
      disconnectReason: 'Client-side close frame status not set',
    });
  });

  it('does not run for a vanished connection, whose id is then gone', async () => {
    const { ws, id } = await openWithId('?token=hank');
    const clientSaw = closed(ws);

    expect(stub.gateway.vanish(id)).toBe(true);
    expect((await clientSaw).code).toBe(1006);
    await stub.gateway.settled();

    expect(routeKeysOf(id)).toEqual(['$connect']);
    expect(stub.gateway.connectionIds()).not.toContain(id);
  });
});
