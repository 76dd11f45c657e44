/**
 * The `@connections` management API, driven by the real `ApiGatewayManagementApiClient` as the handlers
 * drive it in AWS.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closed, nextMessage, openSocket, type StubGateway, startStubGateway } from './support/stub-gateway.js';

let stub: StubGateway;
let client: ApiGatewayManagementApiClient;

beforeAll(async () => {
  stub = await startStubGateway({ maxPostBytes: 4096 });
  client = new ApiGatewayManagementApiClient({
    endpoint: stub.connectionsEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    // Injected 429s and 5xx must surface here, not be retried away by the SDK.
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await stub.close();
});

async function openWithId(user: string) {
  const before = new Set(stub.gateway.connectionIds());
  const ws = await openSocket(`${stub.url}?token=${user}`);
  const id = stub.gateway.connectionIds().find((c) => !before.has(c));
  if (id === undefined) throw new Error('no new connection id');
  return { ws, id };
}

async function errorOf(promise: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

describe('@connections', () => {
  it('PostToConnection delivers the data to the client as one text frame', async () => {
    const { ws, id } = await openWithId('alice');
    const received = nextMessage(ws);

    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: JSON.stringify({ type: 'pong', ts: 1 }) }));

    expect(await received).toEqual({ type: 'pong', ts: 1 });
    ws.close();
    await closed(ws);
  });

  it('GetConnection describes the connection', async () => {
    const before = Date.now();
    const { ws, id } = await openWithId('bob');

    const answer = await client.send(new GetConnectionCommand({ ConnectionId: id }));

    expect(answer.Identity).toEqual({ SourceIp: '127.0.0.1' });
    expect(answer.ConnectedAt).toBeInstanceOf(Date);
    expect(answer.ConnectedAt?.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(answer.LastActiveAt?.getTime()).toBeGreaterThanOrEqual(answer.ConnectedAt?.getTime() ?? 0);
    ws.close();
    await closed(ws);
  });

  it('DeleteConnection closes the socket, runs $disconnect, and the id is gone afterwards', async () => {
    const { ws, id } = await openWithId('carol');
    const clientSaw = closed(ws);
    const disconnect = stub.nextDisconnect();

    await client.send(new DeleteConnectionCommand({ ConnectionId: id }));

    expect((await clientSaw).code).toBe(1000);
    // What API Gateway reports after DeleteConnection (aws/chalice#2060 quotes it from AWS logs).
    expect((await disconnect).requestContext).toMatchObject({
      connectionId: id,
      disconnectStatusCode: 1000,
      disconnectReason: 'Connection Closed Normally',
    });
    expect(await errorOf(client.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'x' })))).toEqual({
      name: 'GoneException',
      status: 410,
    });
    expect(await errorOf(client.send(new DeleteConnectionCommand({ ConnectionId: id })))).toEqual({
      name: 'GoneException',
      status: 410,
    });
  });

  it('answers GoneException (410) for an unknown id, on every method', async () => {
    const unknown = 'AAAAAAAAAAAAAAA=';
    expect(await errorOf(client.send(new PostToConnectionCommand({ ConnectionId: unknown, Data: 'x' })))).toEqual({
      name: 'GoneException',
      status: 410,
    });
    expect(await errorOf(client.send(new GetConnectionCommand({ ConnectionId: unknown })))).toEqual({
      name: 'GoneException',
      status: 410,
    });
  });

  it('answers PayloadTooLargeException (413) over the post limit and delivers nothing', async () => {
    const { ws, id } = await openWithId('dave');
    let frames = 0;
    ws.on('message', () => {
      frames += 1;
    });

    const error = await errorOf(client.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'z'.repeat(5000) })));
    const after = nextMessage(ws);
    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: '"after"' }));
    // Frames arrive in order, so once "after" is in, the refused post would have arrived before it.
    expect(await after).toBe('after');

    expect(error).toEqual({ name: 'PayloadTooLargeException', status: 413 });
    expect(frames).toBe(1);
    ws.close();
    await closed(ws);
  });

  it('answers injected faults in order, then succeeds', async () => {
    const { ws, id } = await openWithId('erin');
    stub.gateway.injectPostFaults(id, [429, 500]);
    const post = () => client.send(new PostToConnectionCommand({ ConnectionId: id, Data: '"hi"' }));

    const first = await errorOf(post());
    const second = await errorOf(post());
    const delivered = nextMessage(ws);
    await post();

    expect(first).toEqual({ name: 'LimitExceededException', status: 429 });
    expect(second).toEqual({ name: 'InternalServerErrorException', status: 500 });
    expect(await delivered).toBe('hi');
    ws.close();
    await closed(ws);
  });

  it('answers 410 for a vanished connection that never got $disconnect', async () => {
    const { ws, id } = await openWithId('frank');
    const clientSaw = closed(ws);
    stub.gateway.vanish(id);
    await clientSaw;

    expect(await errorOf(client.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'x' })))).toEqual({
      name: 'GoneException',
      status: 410,
    });
  });

  it('refuses an unsigned request with 403 ForbiddenException', async () => {
    const { ws, id } = await openWithId('gina');

    const response = await fetch(`${stub.connectionsEndpoint}/@connections/${encodeURIComponent(id)}`, {
      method: 'POST',
      body: 'x',
    });

    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
    expect(await response.json()).toEqual({ message: 'Missing Authentication Token' });
    ws.close();
    await closed(ws);
  });
});
