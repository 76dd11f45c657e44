/**
 * The AWS IoT Core transport (`@viba-realtime/client/mqtt`): MQTT 5 or 3.1.1 over TLS or WebSocket with
 * MQTT.js, the Cognito token as the CONNECT password, checked by the stack's IoT custom authorizer. Topics
 * and their reasons: docs/PROTOCOL.md, "MQTT topics".
 *
 * MQTT.js is a peer dependency loaded with `import('mqtt')` on the first connect, so an app that never picks
 * this transport never bundles it. The module imports nothing from `node:`: in browsers MQTT.js's own build
 * speaks `ws://` / `wss://`.
 * @example
 * import { createRealtimeClient } from '@viba-realtime/client';
 * import { mqttTransport } from '@viba-realtime/client/mqtt';
 * const client = createRealtimeClient({
 *   url: 'wss://abc123-ats.iot.eu-west-1.amazonaws.com/mqtt',
 *   getToken,
 *   transport: mqttTransport({ url: 'wss://abc123-ats.iot.eu-west-1.amazonaws.com/mqtt', authorizerName }),
 * });
 */
import {
  type ClientFrame,
  clientIdFor,
  IOT_LIMITS,
  type ServerFrame,
  TOPIC_SUB_PATTERN,
  topics,
} from '@viba-realtime/protocol';
import type { IClientOptions, MqttClient, Packet } from 'mqtt';
import { AuthenticationError, ConnectionError } from '../errors.js';
import { randomId } from '../internal/ids.js';
import { decodeTokenClaims } from '../internal/token.js';
import { planSubscriptions, type SubscriptionPlan } from './mqtt/subscriptions.js';
import {
  MQTT_MIN_TOKEN_VALIDITY_MS,
  type Transport,
  type TransportCloseInfo,
  type TransportConnection,
  type TransportHandlers,
} from './transport.js';

/** MQTT.js's `connect`, or a function that behaves like it (a wrapper that logs or instruments, say). */
export type MqttConnectFunction = (url: string, options: IClientOptions) => MqttClient;

/** The MQTT.js module (`import mqtt from 'mqtt'` or `import * as mqtt from 'mqtt'`), or its `connect`. */
export type MqttModule = MqttConnectFunction | { connect: MqttConnectFunction };

/** Options of {@link mqttTransport}. */
export interface MqttTransportOptions {
  /**
   * The broker: `wss://{iot-endpoint}/mqtt` (browsers, React Native), `mqtts://{iot-endpoint}:8883` or `:443`
   * (Node; ALPN `mqtt` is sent on 443, as IoT requires there), or the emulator's `ws://127.0.0.1:4000/mqtt` /
   * `mqtt://127.0.0.1:1883`.
   */
  url: string;
  /**
   * Suffix of the MQTT client id `{sub}.{deviceId}` (`clientIdFor`). IoT lets one connection hold a client id
   * and drops the older one, so keep it stable per device or tab only if that is what the app wants.
   * At most 64 characters. @default random, fixed for this transport
   */
  deviceId?: string;
  /**
   * The IoT custom authorizer's name (the stack's `IotAuthorizerName` output), sent as IoT expects
   * (`x-amz-customauthorizer-name` in the MQTT username, and in the query of a WebSocket URL). Needed on AWS
   * unless the endpoint's domain configuration has it as the default authorizer; the emulator ignores it.
   */
  authorizerName?: string;
  /** MQTT.js, injected (tests, or a bundler setup that cannot split `import('mqtt')`). @default await import('mqtt') */
  mqtt?: MqttModule;
  /** MQTT 5 (IoT's and AWS's device SDK's recommendation) or 3.1.1. @default 5 */
  protocolVersion?: 4 | 5;
  /** Longest wait for CONNACK and every SUBACK together, ms. @default 10000 */
  connectTimeoutMs?: number;
  /** MQTT keep-alive, seconds, from IoT's 30 to 1200. MQTT.js sends PINGREQ after this long idle. @default 60 */
  keepaliveSeconds?: number;
}

/** The MQTT username: IoT passes it to the authorizer, which reads only the password. */
const USERNAME = 'viba-client';
const AUTHORIZER_NAME_PARAM = 'x-amz-customauthorizer-name';
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_KEEPALIVE_SECONDS = 60;
/** How long `close()` lets the DISCONNECT and pending PUBACKs drain before the socket is cut. */
const CLOSE_GRACE_MS = 1_000;
const MAX_DEVICE_ID_LENGTH = 64;

/** CONNACK codes that mean "this token will never do": MQTT 3.1.1 return codes 4 (bad user name or password)
 * and 5 (not authorized); MQTT 5 reason codes 0x86, 0x87 and 0x8C (bad authentication method). */
const AUTH_REFUSALS: Record<4 | 5, readonly number[]> = { 4: [4, 5], 5: [0x86, 0x87, 0x8c] };

const URL_PATTERN = /^(mqtts?|wss?):\/\/[^/?#]+/i;
/** `mqtts://host:443`: IoT serves MQTT on 443 only to clients that ask for it with ALPN. */
const MQTTS_443_PATTERN = /^mqtts:\/\/[^/?#]*:443(?:[/?#]|$)/i;

/**
 * A {@link Transport} over AWS IoT Core MQTT (or the emulator's). Each connect subscribes (QoS 1) to the
 * user's answers, rooms and inbox, to announcements, and to each of the token's Cognito groups'
 * announcements, and resolves once every SUBACK is in, so no answer to the first request can be missed.
 * A frame may reach `handlers.frame` between the first SUBACK and that moment (a notification, say).
 * Throws a `TypeError` / `RangeError` for options that can never work.
 */
export function mqttTransport(options: MqttTransportOptions): Transport {
  const settings = resolveSettings(options);
  let loading: Promise<MqttConnectFunction> | undefined;
  const load = () => {
    loading ??= loadConnect(options.mqtt).catch((error: unknown) => {
      // Not cached: a failed chunk load (offline browser) may work on the next attempt.
      loading = undefined;
      throw error;
    });
    return loading;
  };
  return {
    name: 'mqtt',
    needsHeartbeat: false,
    // IoT has no fixed cut: the custom authorizer ends the connection at token expiry, and the client
    // reconnects with a fresh token before that.
    maxConnectionMs: undefined,
    minTokenValidityMs: MQTT_MIN_TOKEN_VALIDITY_MS,
    async connect(token: string, handlers: TransportHandlers, signal: AbortSignal): Promise<TransportConnection> {
      const identity = identify(token);
      if (signal.aborted) throw new ConnectionError('Connect aborted.');
      const connect = await load();
      if (signal.aborted) throw new ConnectionError('Connect aborted.');
      return open({ connect, settings, identity, token, handlers, signal });
    },
  };
}

interface Settings {
  url: string;
  username: string;
  deviceId: string;
  protocolVersion: 4 | 5;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
  tcp: boolean;
  alpn: boolean;
}

function resolveSettings(options: MqttTransportOptions): Settings {
  const match = URL_PATTERN.exec(options.url);
  if (!match) {
    throw new TypeError(`mqttTransport: url must be mqtt://, mqtts://, ws:// or wss:// (got "${options.url}").`);
  }
  const scheme = (match[1] as string).toLowerCase();
  const protocolVersion = options.protocolVersion ?? 5;
  if (protocolVersion !== 4 && protocolVersion !== 5) {
    throw new RangeError(`mqttTransport: protocolVersion must be 4 (MQTT 3.1.1) or 5 (got ${protocolVersion}).`);
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs <= 0) {
    throw new RangeError(`mqttTransport: connectTimeoutMs must be a positive number (got ${connectTimeoutMs}).`);
  }
  const keepaliveSeconds = options.keepaliveSeconds ?? DEFAULT_KEEPALIVE_SECONDS;
  if (
    !Number.isInteger(keepaliveSeconds) ||
    keepaliveSeconds < IOT_LIMITS.minKeepAliveSeconds ||
    keepaliveSeconds > IOT_LIMITS.maxKeepAliveSeconds
  ) {
    throw new RangeError(
      `mqttTransport: keepaliveSeconds must be a whole number from ${IOT_LIMITS.minKeepAliveSeconds} to ${IOT_LIMITS.maxKeepAliveSeconds} (got ${keepaliveSeconds}).`,
    );
  }
  const deviceId = options.deviceId ?? randomId(12);
  if (deviceId.length === 0 || deviceId.length > MAX_DEVICE_ID_LENGTH) {
    throw new RangeError(`mqttTransport: deviceId must be 1 to ${MAX_DEVICE_ID_LENGTH} characters.`);
  }
  let url = options.url;
  let username = USERNAME;
  if (options.authorizerName !== undefined) {
    const param = `${AUTHORIZER_NAME_PARAM}=${encodeURIComponent(options.authorizerName)}`;
    username = `${USERNAME}?${param}`;
    if (scheme.startsWith('ws')) url = `${url}${url.includes('?') ? '&' : '?'}${param}`;
  }
  return {
    url,
    username,
    deviceId,
    protocolVersion,
    connectTimeoutMs,
    keepaliveSeconds,
    tcp: scheme.startsWith('mqtt'),
    alpn: MQTTS_443_PATTERN.test(options.url),
  };
}

async function loadConnect(injected: MqttModule | undefined): Promise<MqttConnectFunction> {
  if (typeof injected === 'function') return injected;
  if (injected !== undefined) return (url, options) => injected.connect(url, options);
  let loaded: unknown;
  try {
    loaded = await import('mqtt');
  } catch (error) {
    throw new ConnectionError('The MQTT transport needs MQTT.js: install the `mqtt` package (version 5).', {
      cause: error,
    });
  }
  // Node's ESM view of the CommonJS build has `connect`; some bundlers expose only `default.connect`.
  const module = loaded as { connect?: unknown; default?: { connect?: unknown } };
  const connect = module.connect ?? module.default?.connect;
  if (typeof connect !== 'function') throw new ConnectionError('The `mqtt` package has no `connect` export.');
  return connect as MqttConnectFunction;
}

interface Identity {
  sub: string;
  groups: readonly unknown[];
}

/** The user the token is for. Not verified (the IoT authorizer does that); only read to name topics. */
function identify(token: string): Identity {
  const claims = decodeTokenClaims(token);
  if (claims === undefined) throw new AuthenticationError('The token is not a JWT: its claims cannot be read.');
  const { sub } = claims;
  if (typeof sub !== 'string' || !TOPIC_SUB_PATTERN.test(sub)) {
    throw new AuthenticationError('The token has no `sub` usable in MQTT topics and client ids.');
  }
  const groups = claims['cognito:groups'];
  return { sub, groups: Array.isArray(groups) ? groups : [] };
}

interface OpenArgs {
  connect: MqttConnectFunction;
  settings: Settings;
  identity: Identity;
  token: string;
  handlers: TransportHandlers;
  signal: AbortSignal;
}

const hex = (code: number) => `0x${code.toString(16).padStart(2, '0')}`;

/** One connection: CONNECT, the SUBSCRIBEs, then frames until it ends. */
function open({ connect, settings, identity, token, handlers, signal }: OpenArgs): Promise<TransportConnection> {
  const { url, protocolVersion } = settings;
  const clientId = clientIdFor(identity.sub, settings.deviceId);
  const plan = planSubscriptions(identity.sub, identity.groups);
  const requestsTopic = topics.requests(identity.sub);

  return new Promise<TransportConnection>((resolve, reject) => {
    if (utf8Length(clientId) > IOT_LIMITS.maxClientIdBytes) {
      reject(
        new ConnectionError(`The client id "${clientId}" is longer than IoT's 128 bytes: use a shorter deviceId.`),
      );
      return;
    }
    let client: MqttClient;
    try {
      client = connect(url, {
        clientId,
        username: settings.username,
        password: token,
        protocolVersion,
        clean: true,
        // The SDK's state machine reconnects, with a fresh token; MQTT.js must never do it on its own.
        reconnectPeriod: 0,
        resubscribe: false,
        connectTimeout: settings.connectTimeoutMs,
        keepalive: settings.keepaliveSeconds,
        ...(settings.alpn ? { ALPNProtocols: ['mqtt'] } : {}),
      });
    } catch (error) {
      reject(new ConnectionError(`Cannot connect to ${url}.`, { cause: error }));
      return;
    }

    let phase: 'connecting' | 'open' | 'closed' = 'connecting';
    /** The CONNACK's refusal code, when it refused. */
    let refusal: number | undefined;
    /** The server's DISCONNECT reason (MQTT 5), when it sent one. */
    let disconnect: { code: number; reason: string | undefined } | undefined;
    let lastError: Error | undefined;
    let closeRequested = false;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;

    const timer = setTimeout(
      () => fail(new ConnectionError(`No CONNACK and SUBACKs from ${url} within ${settings.connectTimeoutMs} ms.`)),
      settings.connectTimeoutMs,
    );
    const onAbort = () => fail(new ConnectionError('Connect aborted.'));
    signal.addEventListener('abort', onAbort, { once: true });

    const report = (error: Error) => outsideMqttJs(() => handlers.error(error));

    const settle = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };

    function fail(error: Error): void {
      if (phase !== 'connecting') return;
      phase = 'closed';
      settle();
      client.end(true);
      reject(error);
    }

    /** Why the connect failed, from what was seen so far. */
    function failure(): Error {
      if (refusal !== undefined) {
        if (AUTH_REFUSALS[protocolVersion].includes(refusal)) {
          return new AuthenticationError(`The service refused the token (CONNACK ${hex(refusal)}).`, {
            status: refusal,
            cause: lastError,
          });
        }
        return new ConnectionError(`${url} refused the connection (CONNACK ${hex(refusal)}).`, {
          cause: lastError,
          details: { code: refusal },
        });
      }
      if (disconnect !== undefined) {
        return new ConnectionError(`${url} disconnected during connect (${describeDisconnect(disconnect)}).`, {
          cause: lastError,
          details: { code: disconnect.code },
        });
      }
      const why = lastError ? `: ${lastError.message}` : ' (connection closed)';
      return new ConnectionError(`Cannot connect to ${url}${why}.`, { cause: lastError });
    }

    const connection: TransportConnection = {
      send(frame: ClientFrame) {
        if (phase !== 'open' || closeRequested || !client.connected || client.disconnecting) {
          throw new ConnectionError('The MQTT connection is not open.');
        }
        client.publish(requestsTopic, JSON.stringify(frame), { qos: 1 }, (error) => {
          // Only a PUBACK refusal (MQTT 5, with a reason code) is news: a publish still in flight when the
          // connection ends fails here too, and `closed` already says that.
          const code = (error as { code?: unknown } | undefined)?.code;
          if (error && typeof code === 'number' && phase === 'open') {
            report(
              new ConnectionError(`The broker refused a publish to ${requestsTopic} (PUBACK ${hex(code)}).`, {
                cause: error,
                details: { code },
              }),
            );
          }
        });
      },
      close() {
        if (closeRequested || phase === 'closed') return;
        closeRequested = true;
        // A clean DISCONNECT, so IoT records a client-initiated disconnect; cut the socket if it does not drain.
        client.end(false);
        graceTimer = setTimeout(() => client.stream?.destroy(), CLOSE_GRACE_MS);
      },
    };

    client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd !== 'connack') return;
      const code = protocolVersion === 5 ? packet.reasonCode : packet.returnCode;
      if (code !== undefined && code !== 0) refusal = code;
    });

    client.on('error', (error) => {
      lastError = error;
      if (phase === 'connecting') fail(failure());
    });

    client.on('disconnect', (packet) => {
      disconnect = { code: packet.reasonCode ?? 0, reason: packet.properties?.reasonString };
      // The server closes the socket after its DISCONNECT; do not depend on it.
      client.end(true);
    });

    client.on('close', () => {
      clearTimeout(graceTimer);
      if (phase === 'connecting') {
        fail(failure());
        return;
      }
      if (phase !== 'open') return;
      phase = 'closed';
      // Let MQTT.js release its stores and timers; a no-op when `close()` already ended it.
      if (!client.disconnecting) client.end(true);
      let info: TransportCloseInfo;
      if (disconnect !== undefined) {
        info = {
          code: disconnect.code,
          reason: `server disconnected (${describeDisconnect(disconnect)})`,
          ...(lastError ? { error: lastError } : {}),
        };
      } else if (closeRequested) {
        info = { reason: 'closed by the client' };
      } else {
        info = {
          reason: lastError ? `connection lost: ${lastError.message}` : 'connection lost',
          ...(lastError ? { error: lastError } : {}),
        };
      }
      outsideMqttJs(() => handlers.closed(info));
    });

    client.on('message', (topic, payload) => {
      if (phase === 'closed') return;
      const frame = parseFrame(topic, payload);
      if (frame instanceof ConnectionError) {
        report(frame);
        return;
      }
      try {
        handlers.frame(frame);
      } catch (error) {
        report(new ConnectionError(`The frame handler threw on a "${frame.type}" frame.`, { cause: error }));
      }
    });

    client.once('connect', () => {
      if (settings.tcp) setNoDelay(client);
      subscribeAll(client, plan).then(
        (refused) => {
          if (phase !== 'connecting') return;
          const fatal = refused.filter((r) => plan.required.includes(r.filter));
          if (fatal.length > 0) {
            fail(
              new ConnectionError(`The broker refused the subscriptions the connection needs: ${describe(fatal)}.`, {
                details: { refused: fatal },
              }),
            );
            return;
          }
          phase = 'open';
          settle();
          resolve(connection);
          if (refused.length > 0) {
            report(
              new ConnectionError(`The broker refused subscriptions: ${describe(refused)}.`, { details: { refused } }),
            );
          }
          if (plan.skippedGroups.length > 0) {
            report(
              new ConnectionError(
                `Not subscribed to the announcements of ${plan.skippedGroups.length} group(s): ${plan.skippedGroups
                  .map((s) => `${s.group} (${s.reason})`)
                  .join(', ')}.`,
                { details: { skippedGroups: plan.skippedGroups } },
              ),
            );
          }
        },
        (error: unknown) => {
          lastError ??= error instanceof Error ? error : new Error(String(error));
          fail(failure());
        },
      );
    });
  });
}

interface Refusal {
  filter: string;
  code: number;
}

const describe = (refused: readonly Refusal[]) => refused.map((r) => `${r.filter} (${hex(r.code)})`).join(', ');

const describeDisconnect = (d: { code: number; reason: string | undefined }) =>
  d.reason ? `${hex(d.code)} ${d.reason}` : `reason code ${hex(d.code)}`;

/**
 * Sends every SUBSCRIBE at once and waits for all SUBACKs; resolves with the refused filters (SUBACK codes
 * of 0x80 and up), rejects when no SUBACK can come (the connection ended).
 */
function subscribeAll(client: MqttClient, plan: SubscriptionPlan): Promise<Refusal[]> {
  const batches = plan.batches.map(
    (filters) =>
      new Promise<Refusal[]>((resolve, reject) => {
        client.subscribe([...filters], { qos: 1 }, (error, _granted, packet) => {
          // MQTT.js reports a refused filter as an error carrying the SUBACK; without one, nothing was acked.
          const codes = packet?.granted;
          if (!codes || codes.length !== filters.length) {
            reject(error ?? new Error('SUBACK without a code per filter.'));
            return;
          }
          const refused: Refusal[] = [];
          codes.forEach((code, index) => {
            // mqtt-packet types SUBACK codes loosely; they are numbers on the wire. Anything else counts as refused.
            const value = typeof code === 'number' ? code : 0x80;
            if (value >= 0x80) refused.push({ filter: filters[index] as string, code: value });
          });
          resolve(refused);
        });
      }),
  );
  return Promise.all(batches).then((all) => all.flat());
}

/** A PUBLISH payload as a server frame, or the error to report (never thrown out of an MQTT.js callback). */
function parseFrame(topic: string, payload: Uint8Array): ServerFrame | ConnectionError {
  let frame: unknown;
  try {
    frame = JSON.parse(decodeUtf8(payload));
  } catch (error) {
    return new ConnectionError(`Ignored a message on ${topic} that is not JSON.`, { cause: error, details: { topic } });
  }
  if (typeof frame !== 'object' || frame === null || typeof (frame as { type?: unknown }).type !== 'string') {
    return new ConnectionError(`Ignored a message on ${topic} without a \`type\`.`, { details: { topic, frame } });
  }
  return frame as ServerFrame;
}

/** Nagle's algorithm holds small QoS 1 publishes back for delayed ACKs (measured: p99 51 ms vs 14 ms). */
function setNoDelay(client: MqttClient): void {
  const stream = client.stream as unknown as { setNoDelay?: (noDelay: boolean) => unknown } | undefined;
  if (typeof stream?.setNoDelay === 'function') stream.setNoDelay(true);
}

/**
 * Runs a handler of the client's: an exception must not unwind through MQTT.js's packet handling (which
 * would stall the connection's parser), so it is rethrown on a fresh stack, where it stays visible.
 */
function outsideMqttJs(call: () => void): void {
  try {
    call();
  } catch (error) {
    setTimeout(() => {
      throw error;
    }, 0);
  }
}

/** UTF-8 length without TextEncoder (React Native before Hermes had one). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const point = char.codePointAt(0) as number;
    bytes += point < 0x80 ? 1 : point < 0x800 ? 2 : point < 0x10000 ? 3 : 4;
  }
  return bytes;
}

let decoder: TextDecoder | undefined;

/** MQTT.js hands payloads over as Buffers (its browser build bundles a Buffer polyfill), whose `toString`
 * decodes UTF-8 where the platform has no TextDecoder (React Native's Hermes). */
function decodeUtf8(payload: Uint8Array): string {
  if (typeof TextDecoder !== 'function') return payload.toString();
  decoder ??= new TextDecoder();
  return decoder.decode(payload);
}
