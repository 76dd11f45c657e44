/**
 * Requests anyone can send before authenticating must never take the emulator down: each malformed or
 * hostile input below gets an HTTP error answer, and a normal client can still connect and ping after
 * all of them (the whole file shares one gateway, so a crash or a wedged server fails the last test).
 */

import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closed,
  nextMessage,
  openSocket,
  rawRequest,
  refusalStatus,
  type StubGateway,
  startStubGateway,
  UPGRADE_HEADERS,
} from './support/stub-gateway.js';

let stub: StubGateway;

beforeAll(async () => {
  stub = await startStubGateway();
});

afterAll(async () => {
  await stub.close();
});

/** A normal client still gets through: connect, ping, pong, close. */
async function stillServes(): Promise<void> {
  const ws = await openSocket(`${stub.url}?token=alice`);
  ws.send(JSON.stringify({ action: 'ping' }));
  expect(await nextMessage(ws)).toMatchObject({ route: 'ping' });
  ws.close();
  await closed(ws);
}

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];

describe('hostile upgrade requests', () => {
  it.each(PROTOTYPE_KEYS)('answers ?%s=x without a token with 401, not a crash', async (key) => {
    expect(await refusalStatus(`${stub.url}?${key}=x`)).toBe(401);
    await stillServes();
  });

  it.each(PROTOTYPE_KEYS)('answers a "%s: x" header without a token with 401, not a crash', async (key) => {
    const { status } = await rawRequest(stub.httpUrl, `GET /local HTTP/1.1\r\n${UPGRADE_HEADERS}${key}: x\r\n\r\n`);
    expect(status).toBe(401);
    await stillServes();
  });

  it('passes such keys to the Lambdas as own properties of plain objects, as AWS JSON would', async () => {
    const { status } = await rawRequest(
      stub.httpUrl,
      `GET /local?token=bob&__proto__=q&constructor=c&constructor=d HTTP/1.1\r\n${UPGRADE_HEADERS}__proto__: h\r\n\r\n`,
    );
    // 101, then our raw client closes without a WebSocket close frame.
    expect(status).toBe(101);
    await stub.gateway.settled();
    const event = stub.authorizerEvents.at(-1);
    // Object.entries lists own enumerable keys only: what JSON.parse of the AWS event would give.
    expect(Object.getPrototypeOf(event?.queryStringParameters)).toBe(Object.prototype);
    expect(Object.entries(event?.queryStringParameters ?? {})).toEqual([
      ['token', 'bob'],
      ['__proto__', 'q'],
      ['constructor', 'd'],
    ]);
    expect(Object.entries(event?.multiValueQueryStringParameters ?? {})).toContainEqual(['constructor', ['c', 'd']]);
    expect(Object.entries(event?.headers ?? {})).toContainEqual(['__proto__', 'h']);
    expect(Object.entries(event?.multiValueHeaders ?? {})).toContainEqual(['__proto__', ['h']]);
  });

  it('answers an unparsable request target with 400', async () => {
    const { status } = await rawRequest(stub.httpUrl, `GET http://[ HTTP/1.1\r\n${UPGRADE_HEADERS}\r\n`);
    expect(status).toBe(400);
    await stillServes();
  });

  it('answers 500 and ends the socket when the upgrade path itself fails', async () => {
    // Stands in for a bug of ours: a request object whose URL cannot even be read.
    const req = {
      get url(): string {
        throw new Error('bug on purpose');
      },
    } as unknown as IncomingMessage;
    const socket = new PassThrough();
    const written: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => written.push(chunk));
    const ended = new Promise((resolve) => socket.on('end', resolve));

    stub.gateway.handleUpgrade(req, socket, Buffer.alloc(0));
    await ended;

    expect(Buffer.concat(written).toString()).toMatch(/^HTTP\/1\.1 500 /);
  });
});

describe('hostile HTTP requests', () => {
  it.each([
    ['an unparsable target', 'GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    [
      'a @connections id that does not decode',
      'GET /local/@connections/%E0%A4%A HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\n\r\n',
      400,
    ],
    [
      'a @connections id "__proto__"',
      'GET /local/@connections/__proto__ HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\n\r\n',
      410,
    ],
    [
      'a DELETE of @connections/constructor',
      'DELETE /local/@connections/constructor HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\n\r\n',
      410,
    ],
    [
      'a POST to @connections/toString',
      'POST /local/@connections/toString HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\nContent-Length: 1\r\n\r\nx',
      410,
    ],
    ['/dev/token with a stray %', 'GET /dev/token?sub=%&ttl=% HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['/dev/token with a __proto__ parameter', 'GET /dev/token?sub=alice&__proto__=x HTTP/1.1\r\nHost: x\r\n\r\n', 200],
    ['a target URL reads as a bad host', 'GET //%%/../@connections/ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['an empty @connections id', 'GET /local/@connections/ HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\n\r\n', 404],
  ])('answers %s with its HTTP status', async (_name, request, status) => {
    // Connection: close so the server ends the socket after its answer.
    const { status: got } = await rawRequest(stub.httpUrl, request.replace('\r\n', '\r\nConnection: close\r\n'));
    expect(got).toBe(status);
    await stillServes();
  });
});
