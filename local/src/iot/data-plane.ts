/**
 * IoT Core's data plane on the emulator's HTTP port, answering as the service model of
 * `@aws-sdk/client-iot-data-plane` describes it, so the real `IoTDataPlaneClient` works against it:
 *
 * - `Publish` (`POST /topics/{topic}`): query `qos`, `retain`, `contentType`, `responseTopic`, `messageExpiry`;
 *   headers `x-amz-mqtt5-user-properties` (base64 JSON), `x-amz-mqtt5-payload-format-indicator`,
 *   `x-amz-mqtt5-correlation-data` (base64); the body is the payload.
 * - `DeleteConnection` (`DELETE /connections/{clientId}?cleanSession=&preventWillMessage=`): the broker closes
 *   that client's connection (MQTT 5: DISCONNECT 0x98 Administrative action) and IoT's `disconnected`
 *   lifecycle event follows with `disconnectReason: API_INITIATED_DISCONNECT`. The two flags are accepted
 *   and change nothing: the broker keeps no persistent sessions and publishes no wills.
 * - `GetConnection` (`GET /connections/{clientId}`): `connected`, `clientId`, `cleanSession`,
 *   `connectedSince` (and `sourceIp` with `includeSocketInformation=true`) of a connected client.
 *
 * A client that is not connected is 404 `ResourceNotFoundException`. Errors carry `x-amzn-errortype`, from
 * which the SDK picks the exception class (`InvalidRequestException` 400, `RequestEntityTooLargeException`
 * 413, ...).
 *
 * Fault injection (../faults/): a valid `Publish` first asks the broker's fault hook, which may answer it as the
 * service model's throttling and server errors (429 `ThrottlingException`, 500 `InternalFailureException`, 503
 * `ServiceUnavailableException`, with the model's descriptions as messages), or never answer it (`timeout`).
 * A failed publish reaches nobody.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { IOT_LIMITS } from '@viba-realtime/protocol';
import type { Broker } from '../broker/broker.js';
import { InvalidTopicError, PayloadTooLargeError } from '../broker/errors.js';
import { ReasonCode } from '../broker/limits.js';
import type { BrokerQoS, PublishProperties } from '../broker/types.js';
import type { FaultHook } from '../faults/injector.js';
import type { IotPublishFault } from '../faults/rules.js';
import type { EmulatorLogger } from '../log.js';

/** The path prefix of the data plane's Publish. */
export const DATA_PLANE_PUBLISH_PREFIX = '/topics/';

/** The path prefix of the data plane's DeleteConnection and GetConnection. */
export const DATA_PLANE_CONNECTIONS_PREFIX = '/connections/';

/** A request the data plane refuses, with the status and `x-amzn-ErrorType` IoT's model gives it. */
export class DataPlaneError extends Error {
  override readonly name = 'DataPlaneError';
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown, errorType?: string): void {
  const body = value === undefined ? '' : JSON.stringify(value);
  res.writeHead(status, {
    ...(value === undefined ? {} : { 'content-type': 'application/json' }),
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(body);
}

const invalid = (message: string) => new DataPlaneError(400, 'InvalidRequestException', message);

/** Each broker's fault hook; kept here so the broker itself knows nothing of fault injection. */
const faultHooks = new WeakMap<Broker, FaultHook<'iot-publish'>>();

/** Puts a fault hook in front of the data plane's `Publish` to `broker` (emulator wiring, see the module's comment). */
export function attachDataPlaneFaults(broker: Broker, hook: FaultHook<'iot-publish'>): void {
  faultHooks.set(broker, hook);
}

/** The errors of the service model (`@aws-sdk/client-iot-data-plane`) that a fault answers with. */
const FAULT_ERRORS: Record<Exclude<IotPublishFault, 'timeout'>, () => DataPlaneError> = {
  '429': () => new DataPlaneError(429, 'ThrottlingException', 'The rate exceeds the limit.'),
  '500': () => new DataPlaneError(500, 'InternalFailureException', 'An unexpected error has occurred.'),
  '503': () => new DataPlaneError(503, 'ServiceUnavailableException', 'The service is temporarily unavailable.'),
};

/** Reads the body, refusing (without buffering the rest) once it passes the 128 KB payload limit. */
async function readPayload(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw new DataPlaneError(413, 'RequestEntityTooLargeException', `Payload exceeds ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      req.resume();
      throw new DataPlaneError(413, 'RequestEntityTooLargeException', `Payload exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseQos(value: string | null): BrokerQoS {
  if (value === null || value === '0') return 0;
  if (value === '1') return 1;
  // IoT Core supports QoS 0 and 1 only.
  throw invalid(`qos must be 0 or 1, got "${value}"`);
}

function parseRetain(value: string | null): boolean {
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw invalid(`retain must be true or false, got "${value}"`);
}

function base64Json(value: string): Record<string, string | string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  } catch {
    throw invalid('x-amz-mqtt5-user-properties must be base64-encoded JSON');
  }
  // The model's user properties are a JSON array of single-pair objects, e.g. [{"a":"1"},{"b":"2"}].
  const list = Array.isArray(parsed) ? parsed : [parsed];
  const out: Record<string, string | string[]> = {};
  for (const entry of list) {
    if (typeof entry !== 'object' || entry === null) throw invalid('x-amz-mqtt5-user-properties: bad entry');
    for (const [name, raw] of Object.entries(entry as Record<string, unknown>)) {
      const v = String(raw);
      const previous = out[name];
      out[name] = previous === undefined ? v : Array.isArray(previous) ? [...previous, v] : [previous, v];
    }
  }
  return out;
}

function properties(req: IncomingMessage, query: URLSearchParams): PublishProperties | undefined {
  const p: PublishProperties = {};
  const contentType = query.get('contentType');
  if (contentType !== null) p.contentType = contentType;
  const responseTopic = query.get('responseTopic');
  if (responseTopic !== null) p.responseTopic = responseTopic;
  const expiry = query.get('messageExpiry');
  if (expiry !== null) {
    if (!/^\d+$/.test(expiry)) throw invalid(`messageExpiry must be a whole number of seconds, got "${expiry}"`);
    p.messageExpiryInterval = Number(expiry);
  }
  const format = req.headers['x-amz-mqtt5-payload-format-indicator'];
  if (typeof format === 'string') {
    if (format !== 'UTF8_DATA' && format !== 'UNSPECIFIED_BYTES')
      throw invalid('x-amz-mqtt5-payload-format-indicator must be UTF8_DATA or UNSPECIFIED_BYTES');
    p.payloadFormatIndicator = format === 'UTF8_DATA';
  }
  const correlation = req.headers['x-amz-mqtt5-correlation-data'];
  if (typeof correlation === 'string') p.correlationData = Buffer.from(correlation, 'base64');
  const user = req.headers['x-amz-mqtt5-user-properties'];
  if (typeof user === 'string') p.userProperties = base64Json(user);
  return Object.keys(p).length > 0 ? p : undefined;
}

function parseBoolean(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw invalid(`${name} must be true or false, got "${value}"`);
}

/** Splits a request target into its path segment after `prefix` (still percent-encoded) and its query. */
function splitTarget(target: string, prefix: string): { raw: string; query: URLSearchParams } {
  const queryAt = target.indexOf('?');
  return {
    raw: target.slice(prefix.length, queryAt === -1 ? undefined : queryAt),
    query: new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1)),
  };
}

function decodeSegment(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalid(`the ${what} is not valid percent-encoding`);
  }
}

/** Publish: see the module's description. */
async function publish(broker: Broker, logger: EmulatorLogger, req: IncomingMessage, res: ServerResponse) {
  const { raw, query } = splitTarget(req.url ?? '/', DATA_PLANE_PUBLISH_PREFIX);
  if (req.method !== 'POST') throw new DataPlaneError(405, 'MethodNotAllowedException', 'Method not allowed');
  const topic = decodeSegment(raw, 'topic');
  const qos = parseQos(query.get('qos'));
  const retain = parseRetain(query.get('retain'));
  const props = properties(req, query);
  const payload = await readPayload(req, broker.limits.maxPayloadBytes ?? IOT_LIMITS.maxPayloadBytes);
  const hook = faultHooks.get(broker);
  const fault = hook?.armed() ? hook.decide({ topic }) : undefined;
  if (fault === 'timeout') {
    logger.line('warn', 'IOTDATA', `publish ${topic} held unanswered (fault)`);
    return;
  }
  if (fault !== undefined) throw FAULT_ERRORS[fault]();
  let receivers: number;
  try {
    receivers = await broker.publish(topic, payload, { qos, retain, ...(props ? { properties: props } : {}) });
  } catch (error) {
    if (error instanceof InvalidTopicError) throw invalid(error.message);
    if (error instanceof PayloadTooLargeError)
      throw new DataPlaneError(413, 'RequestEntityTooLargeException', error.message);
    throw error;
  }
  logger.line('debug', 'IOTDATA', `publish ${topic} qos${qos} ${payload.length}B -> ${receivers}`);
  sendJson(res, 200, { message: 'OK', traceId: randomUUID() });
}

/** DeleteConnection and GetConnection: see the module's description. */
async function connection(broker: Broker, logger: EmulatorLogger, req: IncomingMessage, res: ServerResponse) {
  const { raw, query } = splitTarget(req.url ?? '/', DATA_PLANE_CONNECTIONS_PREFIX);
  // ListSubscriptions and SendDirectMessage live under the client's path; they are not emulated.
  if (raw.includes('/'))
    throw new DataPlaneError(501, 'NotImplementedException', `${req.method} ${req.url} is not emulated`);
  if (req.method !== 'DELETE' && req.method !== 'GET')
    throw new DataPlaneError(405, 'MethodNotAllowedException', 'Method not allowed');
  const clientId = decodeSegment(raw, 'client id');
  // The model's pattern ^[^$].* and length 1-128.
  if (clientId === '' || clientId.startsWith('$') || clientId.length > 128)
    throw invalid(`clientId must be 1-128 characters not starting with $, got "${clientId}"`);
  const client = broker.client(clientId);
  if (req.method === 'GET') {
    const socket = parseBoolean(query, 'includeSocketInformation');
    req.resume();
    if (client === undefined) throw notConnected(clientId);
    logger.line('debug', 'IOTDATA', `GetConnection ${clientId}`);
    sendJson(res, 200, {
      connected: true,
      clientId,
      // The broker keeps no persistent sessions: every session is clean.
      cleanSession: true,
      connectedSince: client.connectedAt,
      ...(socket && client.remoteAddress !== undefined ? { sourceIp: unmapped(client.remoteAddress) } : {}),
    });
    return;
  }
  // Checked, then ignored: no persistent sessions to clean, no wills to hold back.
  parseBoolean(query, 'cleanSession');
  parseBoolean(query, 'preventWillMessage');
  req.resume();
  if (client === undefined) throw notConnected(clientId);
  // Resolves once the connection is closed and its lifecycle event published.
  await client.disconnect(ReasonCode.AdministrativeAction, 'API_INITIATED_DISCONNECT');
  logger.line('info', 'IOTDATA', `DeleteConnection ${clientId}: disconnected`);
  sendJson(res, 200, undefined);
}

function notConnected(clientId: string): DataPlaneError {
  return new DataPlaneError(404, 'ResourceNotFoundException', `No connection found for client ID ${clientId}`);
}

/** `::ffff:127.0.0.1` as `127.0.0.1`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * Serves the data plane's `POST /topics/{topic}` and `/connections/{clientId}` and returns true; returns false
 * (touching nothing) for any other request. Path parameters are percent-decoded (the SDK encodes `/` as `%2F`;
 * literal slashes in a topic work too). Signatures are not verified, but an unsigned request is refused with
 * 403 as AWS refuses it.
 */
export async function handleDataPlaneRequest(
  broker: Broker,
  logger: EmulatorLogger,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const target = req.url ?? '/';
  const isPublish = target.startsWith(DATA_PLANE_PUBLISH_PREFIX);
  if (!isPublish && !target.startsWith(DATA_PLANE_CONNECTIONS_PREFIX)) return false;
  try {
    if (!req.headers.authorization) throw new DataPlaneError(403, 'ForbiddenException', 'Missing Authentication Token');
    if (isPublish) await publish(broker, logger, req, res);
    else await connection(broker, logger, req, res);
  } catch (error) {
    if (!(error instanceof DataPlaneError)) throw error;
    req.resume();
    logger.line('warn', 'IOTDATA', `${error.status} ${error.errorType}: ${error.message}`);
    sendJson(res, error.status, { message: error.message }, error.errorType);
  }
  return true;
}
