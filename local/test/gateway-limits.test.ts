/**
 * API Gateway's service limits, shrunk so the tests run in milliseconds: 1009 for an oversized frame or
 * message, 1001 'Going away' when idle or too old, and `$disconnect` reporting the same code.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { closed, nextMessage, openSocket, type StubGateway, startStubGateway } from './support/stub-gateway.js';

let stub: StubGateway | undefined;

afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

/** Sends one message as several frames (ws sends a fragment per call with `fin: false`). */
function sendFragmented(ws: WebSocket, parts: string[]): void {
  for (const [i, part] of parts.entries()) ws.send(part, { fin: i === parts.length - 1 });
}

describe('size limits', () => {
  it('closes with 1009 when one frame is larger than the frame limit', async () => {
    stub = await startStubGateway({ maxFrameBytes: 1024, maxMessageBytes: 8192 });
    const ws = await openSocket(`${stub.url}?token=alice`);
    const disconnect = stub.nextDisconnect();
    const clientSaw = closed(ws);

    ws.send(JSON.stringify({ action: 'ping', pad: 'x'.repeat(1100) }));

    expect((await clientSaw).code).toBe(1009);
    expect((await disconnect).requestContext.disconnectStatusCode).toBe(1009);
    await stub.gateway.settled();
    // The oversized frame never reached a route.
    expect(stub.routeEvents.map((e) => e.requestContext.routeKey)).toEqual(['$connect', '$disconnect']);
  });

  it('reassembles a message of small frames within the message limit', async () => {
    stub = await startStubGateway({ maxFrameBytes: 1024, maxMessageBytes: 8192 });
    const ws = await openSocket(`${stub.url}?token=alice`);
    const body = JSON.stringify({ action: 'ping', pad: 'y'.repeat(2500) });

    sendFragmented(ws, [body.slice(0, 1000), body.slice(1000, 2000), body.slice(2000)]);

    expect(await nextMessage(ws)).toEqual({ route: 'ping', body });
    ws.close();
    await closed(ws);
  });

  it('closes with 1009 when a message of small frames exceeds the message limit', async () => {
    stub = await startStubGateway({ maxFrameBytes: 1024, maxMessageBytes: 2048 });
    const ws = await openSocket(`${stub.url}?token=alice`);
    const disconnect = stub.nextDisconnect();
    const clientSaw = closed(ws);

    sendFragmented(ws, ['a'.repeat(1000), 'b'.repeat(1000), 'c'.repeat(1000)]);

    expect((await clientSaw).code).toBe(1009);
    expect((await disconnect).requestContext).toMatchObject({ disconnectStatusCode: 1009 });
  });
});

describe('binary frames', () => {
  it('closes with 1003 without running a route, and $disconnect runs once with 1003', async () => {
    stub = await startStubGateway();
    const ws = await openSocket(`${stub.url}?token=alice`);
    const disconnect = stub.nextDisconnect();
    const clientSaw = closed(ws);

    ws.send(Buffer.from(JSON.stringify({ action: 'ping' })), { binary: true });

    expect((await clientSaw).code).toBe(1003);
    expect((await disconnect).requestContext).toMatchObject({ disconnectStatusCode: 1003 });
    await stub.gateway.settled();
    // Not even $default: a binary frame is rejected before route selection.
    expect(stub.routeEvents.map((e) => e.requestContext.routeKey)).toEqual(['$connect', '$disconnect']);
  });
});

describe('route responses', () => {
  it('delivers a response of exactly the message limit', async () => {
    stub = await startStubGateway({ maxMessageBytes: 2048 });
    const ws = await openSocket(`${stub.url}?token=alice`);
    const answer = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));

    ws.send('"big:2048"');

    expect(await answer).toBe('x'.repeat(2048));
    ws.close();
    await closed(ws);
  });

  it('answers Internal server error instead of a response over the message limit', async () => {
    stub = await startStubGateway({ maxMessageBytes: 2048 });
    const ws = await openSocket(`${stub.url}?token=alice`);

    ws.send('"big:2049"');

    expect(await nextMessage(ws)).toEqual({
      message: 'Internal server error',
      connectionId: expect.any(String),
      requestId: expect.any(String),
    });
    // The connection stays usable, as after any failed integration.
    ws.send(JSON.stringify({ action: 'ping' }));
    expect(await nextMessage(ws)).toMatchObject({ route: 'ping' });
    ws.close();
    await closed(ws);
  });
});

describe('time limits', () => {
  it("closes an idle connection with 1001 'Going away'", async () => {
    stub = await startStubGateway({ idleTimeoutMs: 150 });
    const ws = await openSocket(`${stub.url}?token=alice`);
    const disconnect = stub.nextDisconnect();

    const clientSaw = await closed(ws);

    expect(clientSaw).toEqual({ code: 1001, reason: 'Going away' });
    expect((await disconnect).requestContext).toMatchObject({
      disconnectStatusCode: 1001,
      disconnectReason: 'Going away',
    });
  });

  it('counts a client message as activity, until the maximum duration', async () => {
    stub = await startStubGateway({ idleTimeoutMs: 150, maxConnectionMs: 600 });
    const ws = await openSocket(`${stub.url}?token=alice`);
    const opened = performance.now();
    const clientSaw = closed(ws);
    // A message every 40 ms: never idle for 150 ms, so only the 600 ms cut can end the connection.
    const timer = setInterval(() => ws.send(JSON.stringify({ action: 'ping' })), 40);

    const { code } = await clientSaw;
    clearInterval(timer);

    expect(code).toBe(1001);
    expect(performance.now() - opened).toBeGreaterThanOrEqual(590);
  });

  it('closes a connection at the maximum duration even when it is busy', async () => {
    stub = await startStubGateway({ maxConnectionMs: 150 });
    const ws = await openSocket(`${stub.url}?token=alice`);
    const clientSaw = closed(ws);
    const timer = setInterval(() => ws.send(JSON.stringify({ action: 'ping' })), 20);

    const { code } = await clientSaw;
    clearInterval(timer);

    expect(code).toBe(1001);
  });
});
