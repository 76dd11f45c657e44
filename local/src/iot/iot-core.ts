/**
 * AWS IoT Core around the emulator's MQTT broker: the custom authorizer on CONNECT (invoked through its Lambda
 * entry point with IoT's event shape), policy evaluation of every connect, publish, subscribe and delivery
 * against the documents it returned, the authorizer's `refreshAfterInSeconds` / `disconnectAfterInSeconds`,
 * and the `$aws/events/presence/...` lifecycle events. The broker knows none of this; it all plugs into its
 * hooks. Facts and choices: docs/EMULATOR.md ("MQTT and IoT Core"), docs/research/iot-policies.md.
 */
import { randomUUID } from 'node:crypto';
import { IOT_LIMITS } from '@viba-realtime/protocol';
import type { Context, IoTCustomAuthorizerEvent, IoTCustomAuthorizerResult, IoTProtocolType } from 'aws-lambda';
import { type Broker, createBroker } from '../broker/broker.js';
import { errorText } from '../broker/connection.js';
import { BrokerClosedError } from '../broker/errors.js';
import type { BrokerLimits } from '../broker/limits.js';
import type { BrokerClient, ConnectRequest, DisconnectInfo, DisconnectReason } from '../broker/types.js';
import type { EmulatorLogger } from '../log.js';
import type { Clock } from '../time.js';
import {
  type CompiledIotPolicies,
  compileAuthorizerPolicies,
  evaluate,
  explain,
  type IotAction,
  type IotPolicyContext,
  iotArn,
} from './policy-evaluator.js';
import type { IotRulesEngine } from './rules.js';

/**
 * A custom authorizer's answer. IoT's API model types `policyDocuments` as JSON strings, `@types/aws-lambda`
 * as objects; IoT (and the emulator's parser) accept both.
 */
export type IotAuthorizerAnswer =
  | IoTCustomAuthorizerResult
  | (Omit<IoTCustomAuthorizerResult, 'policyDocuments'> & { policyDocuments: string[] });

/** The custom authorizer's Lambda entry point, as IoT Core invokes it. */
export type IotAuthorizerFunction = (
  event: IoTCustomAuthorizerEvent,
  context?: Context,
) => Promise<IotAuthorizerAnswer>;

/** Options of {@link createIotCore}. */
export interface IotCoreOptions {
  /** The custom authorizer (the real handler in the emulator; a stub in some tests). */
  authorizer: IotAuthorizerFunction;
  region: string;
  /** The account in the resource ARNs the policies are evaluated against. */
  accountId: string;
  /** Decides when `refreshAfterInSeconds` / `disconnectAfterInSeconds` are due; also lifecycle timestamps. */
  clock: Clock;
  logger: EmulatorLogger;
  /** The host name clients connect to: the TLS `serverName` (SNI) IoT would report to the authorizer. */
  serverName: string;
  /** Overrides of the broker's limits (tests). */
  brokerLimits?: Partial<BrokerLimits>;
  /** The rules engine: sees every authorized publish, the lifecycle events included (see `rules.ts`). */
  rules?: Pick<IotRulesEngine, 'onPublish'>;
}

/** The IoT Core emulation: the broker with IoT's hooks in place, and its test hooks. */
export interface IotCore {
  readonly broker: Broker;
  /**
   * Runs every refresh and disconnect that is due by the emulator's clock. Real timers call it when a
   * deadline should have passed; tests call it after moving their clock instead of waiting minutes.
   */
  runDueTimers(): Promise<void>;
  /** The live authorizer session of a connected client id (tests and logs). */
  session(clientId: string): IotSessionInfo | undefined;
  /** Closes the broker (every connection, each with its `disconnected` event attempted) and clears timers. */
  close(): Promise<void>;
}

/** What a connection got from the custom authorizer, as the emulator keeps it. */
export interface IotSessionInfo {
  readonly clientId: string;
  readonly principalId: string;
  /** IoT's `sessionIdentifier` of the lifecycle events. */
  readonly sessionIdentifier: string;
  /** Epoch ms (emulator clock) when the connection is cut, per `disconnectAfterInSeconds`. */
  readonly disconnectAt: number;
  /** Epoch ms (emulator clock) of the next authorizer call, per `refreshAfterInSeconds`. */
  readonly refreshAt: number;
  /** How many times the authorizer was re-invoked for this connection. */
  readonly refreshes: number;
  /** Epoch ms (emulator clock) of the client's last publish or subscribe, or of its CONNECT. */
  readonly lastActiveAt: number;
}

/** The custom authorizer answered something IoT Core would not accept. */
export class IotAuthorizerResponseError extends Error {
  override readonly name = 'IotAuthorizerResponseError';
  constructor(
    message: string,
    /** The response field at fault, e.g. `principalId`. */
    readonly field: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The lifecycle event topics, `$aws/events/presence/{connected|disconnected}/{clientId}`. */
export const lifecycleTopics = {
  connected: (clientId: string) => `$aws/events/presence/connected/${clientId}`,
  disconnected: (clientId: string) => `$aws/events/presence/disconnected/${clientId}`,
} as const;

/** The JSON IoT publishes on the lifecycle topics (life-cycle-events.html). */
export interface IotLifecycleEvent {
  clientId: string;
  /** Epoch ms. */
  timestamp: number;
  eventType: 'connected' | 'disconnected';
  sessionIdentifier: string;
  principalIdentifier: string;
  ipAddress?: string;
  /** Per client id; increases with each connection, shared by a connection's two events. */
  versionNumber: number;
  /** `disconnected` only. */
  clientInitiatedDisconnect?: boolean;
  /** `disconnected` only. */
  disconnectReason?: DisconnectReason;
}

/** MQTT 5 reason codes the IoT layer disconnects with (the broker sends them; 3.1.1 clients see a close). */
const REASON = {
  /** The refreshed authorizer answer no longer lets the client connect. */
  notAuthorized: 0x87,
  /** MQTT 5's "Maximum connect time": exactly `disconnectAfterInSeconds` elapsing. */
  maximumConnectTime: 0xa0,
} as const;

/** IoT's documented pattern for `principalId` (custom-auth-lambda.html). */
const PRINCIPAL_ID = /^[a-zA-Z0-9]{1,128}$/;

/** The parts of an authorizer answer the emulator acts on, validated. */
interface Grant {
  principalId: string;
  policies: CompiledIotPolicies;
  refreshAfterSeconds: number;
  disconnectAfterSeconds: number;
}

/** One authorized connection. Kept as the broker client's `principal`, so every hook finds it in O(1). */
class IotSession implements IotSessionInfo {
  readonly sessionIdentifier = randomUUID();
  /** The policy variables' values; one object per connection, as the evaluator caches by identity. */
  readonly context: IotPolicyContext;
  principalId: string;
  policies: CompiledIotPolicies;
  disconnectAt: number;
  refreshAt: number;
  refreshes = 0;
  lastActiveAt: number;
  versionNumber = 0;
  client: BrokerClient | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Set while a refresh runs, so a timer and `runDueTimers` can't start a second one. */
  refreshing: Promise<void> | undefined;

  constructor(
    readonly clientId: string,
    /** The CONNECT as received: a refresh invokes the authorizer with the same credentials. */
    readonly request: ConnectRequest,
    readonly connectionId: string,
    grant: Grant,
    now: number,
  ) {
    this.context = { clientId };
    this.principalId = grant.principalId;
    this.policies = grant.policies;
    this.disconnectAt = now + grant.disconnectAfterSeconds * 1000;
    this.refreshAt = now + grant.refreshAfterSeconds * 1000;
    this.lastActiveAt = now;
  }
}

/**
 * Builds the event IoT Core sends a custom authorizer for an MQTT connection. Fields per "Defining your Lambda
 * function" (custom-auth-lambda.html): the password base64-encoded, `clientId` only when the client sent one,
 * `protocolData.http` (headers and the raw query string with its leading `?`) for MQTT over WebSocket, and a
 * UUID `connectionMetadata.id`. IoT accepts custom authentication only over TLS, so `tls` (with the SNI host
 * name) is always listed. There is no `token`: IoT extracts one only for an authorizer configured with a token
 * key name (signing), and ours reads the password / query string itself. Over WebSocket the MQTT fields are
 * included too, since the emulator authorizes at CONNECT, after the upgrade.
 */
export function buildIotAuthorizerEvent(
  request: ConnectRequest,
  connectionId: string,
  serverName: string,
): IoTCustomAuthorizerEvent {
  const ws = request.transport === 'ws';
  const protocols: IoTProtocolType[] = ws ? ['tls', 'http', 'mqtt'] : ['tls', 'mqtt'];
  const mqtt: NonNullable<IoTCustomAuthorizerEvent['protocolData']['mqtt']> = { clientId: request.clientId };
  if (request.username !== undefined) mqtt.username = request.username;
  if (request.password !== undefined) mqtt.password = request.password.toString('base64');
  const sni = ws ? (hostName(request.headers?.host) ?? serverName) : serverName;
  return {
    signatureVerified: false,
    protocols,
    protocolData: {
      tls: { serverName: sni },
      ...(ws
        ? {
            http: {
              headers: { ...request.headers },
              queryString: request.queryString ? `?${request.queryString}` : '',
            },
          }
        : {}),
      mqtt,
    },
    connectionMetadata: { id: connectionId },
  };
}

/** `host:port` or `[v6]:port` to the host name. */
function hostName(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  if (hostHeader.startsWith('[')) return hostHeader.slice(1, hostHeader.indexOf(']'));
  return hostHeader.split(':')[0];
}

function seconds(value: unknown, field: string): number {
  // IoT's range for both fields is 300-86,400 s (docs/research/iot-policies.md); outside it the answer is not
  // one IoT documents accepting, so the emulator refuses rather than guess.
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < IOT_LIMITS.minAuthorizerSeconds ||
    value > IOT_LIMITS.maxAuthorizerSeconds
  ) {
    throw new IotAuthorizerResponseError(
      `${field} must be an integer ${IOT_LIMITS.minAuthorizerSeconds}-${IOT_LIMITS.maxAuthorizerSeconds}, got ${JSON.stringify(value)}`,
      field,
    );
  }
  return value;
}

/**
 * Validates an authorizer answer. `undefined` when it denies (`isAuthenticated` not true).
 * @throws {IotAuthorizerResponseError} an answer IoT would not accept (bad principal id, times, policies)
 */
export function parseAuthorizerResult(result: unknown): Grant | undefined {
  if (typeof result !== 'object' || result === null)
    throw new IotAuthorizerResponseError('the authorizer answered no object', 'result');
  const r = result as Record<string, unknown>;
  if (r.isAuthenticated !== true) return undefined;
  if (typeof r.principalId !== 'string' || !PRINCIPAL_ID.test(r.principalId))
    throw new IotAuthorizerResponseError(
      `principalId must match [a-zA-Z0-9]{1,128}, got ${JSON.stringify(r.principalId)}`,
      'principalId',
    );
  let policies: CompiledIotPolicies;
  try {
    policies = compileAuthorizerPolicies(r.policyDocuments);
  } catch (error) {
    throw new IotAuthorizerResponseError(`policyDocuments: ${errorText(error)}`, 'policyDocuments', { cause: error });
  }
  return {
    principalId: r.principalId,
    policies,
    refreshAfterSeconds: seconds(r.refreshAfterInSeconds, 'refreshAfterInSeconds'),
    disconnectAfterSeconds: seconds(r.disconnectAfterInSeconds, 'disconnectAfterInSeconds'),
  };
}

/** IPv4 peers reach a dual-stack socket as `::ffff:a.b.c.d`; IoT reports the IPv4 address. */
function ipAddress(remote: string | undefined): string | undefined {
  return remote?.startsWith('::ffff:') ? remote.slice(7) : remote;
}

/**
 * Creates the IoT Core emulation: a broker whose hooks run the custom authorizer and the policy evaluator and
 * publish lifecycle events. Nothing listens until the caller puts the broker on TCP or an HTTP server.
 * @example
 * const iot = createIotCore({ authorizer, region: 'us-east-1', accountId: '000000000000', clock, logger, serverName: '127.0.0.1' });
 * await iot.broker.listenTcp({ port: 1884 });
 */
export function createIotCore(options: IotCoreOptions): IotCore {
  const { authorizer, region, accountId, clock, logger, serverName } = options;
  const sessions = new Map<BrokerClient, IotSession>();
  /** Lifecycle `versionNumber` per client id. */
  const versions = new Map<string, number>();
  let closing = false;

  const sessionOf = (client: BrokerClient): IotSession | undefined =>
    client.principal instanceof IotSession ? client.principal : undefined;

  /** Invokes the authorizer; `undefined` when it denies, throws, or answers something IoT would refuse. */
  async function authorize(request: ConnectRequest, connectionId: string): Promise<Grant | undefined> {
    const event = buildIotAuthorizerEvent(request, connectionId, serverName);
    try {
      const grant = parseAuthorizerResult(await authorizer(event));
      if (!grant) logger.line('info', 'IOTAUTH', `${request.clientId} denied by the authorizer`);
      return grant;
    } catch (error) {
      const level = error instanceof IotAuthorizerResponseError ? 'warn' : 'error';
      logger.line(level, 'IOTAUTH', `${request.clientId} refused: ${errorText(error)}`);
      return undefined;
    }
  }

  function allowed(session: IotSession, action: IotAction, resource: string): boolean {
    if (evaluate(session.policies, { action, resource }, session.context) === 'allow') return true;
    if (logger.enabled('info')) {
      const why = explain(session.policies, { action, resource }, session.context);
      logger.line('info', 'IOTDENY', `${session.clientId} ${action} ${resource} (${why.reason})`);
    }
    return false;
  }

  async function publishLifecycle(topic: string, event: IotLifecycleEvent): Promise<void> {
    // IoT sends no lifecycle events for client ids containing `#` or `+` (life-cycle-events.html).
    if (event.clientId.includes('#') || event.clientId.includes('+')) return;
    try {
      await broker.publish(topic, JSON.stringify(event), { qos: 1 });
    } catch (error) {
      // The broker closing with clients still connected: their `disconnected` events have nowhere to go.
      if (!(error instanceof BrokerClosedError)) throw error;
    }
  }

  function arm(session: IotSession): void {
    clearTimeout(session.timer);
    if (!session.client?.connected) return;
    const next = Math.min(session.disconnectAt, session.refreshAt);
    // A real timer wakes the check; the emulator's clock decides what is due, so tests that move the clock
    // call runDueTimers() instead. Unref'd: a pending refresh must not keep the process alive.
    session.timer = setTimeout(() => void runDue(session), Math.max(0, next - clock()));
    session.timer.unref();
  }

  async function runDue(session: IotSession): Promise<void> {
    const client = session.client;
    if (!client?.connected || closing) return;
    const now = clock();
    if (now >= session.disconnectAt) {
      logger.line('info', 'IOTAUTH', `${session.clientId} disconnectAfterInSeconds elapsed: disconnecting`);
      await client.disconnect(REASON.maximumConnectTime, 'SERVER_INITIATED_DISCONNECT');
      return;
    }
    if (now >= session.refreshAt) {
      session.refreshing ??= refresh(session).finally(() => {
        session.refreshing = undefined;
      });
      await session.refreshing;
      return;
    }
    arm(session);
  }

  async function refresh(session: IotSession): Promise<void> {
    const grant = await authorize(session.request, session.connectionId);
    session.refreshes++;
    const client = session.client;
    if (!client?.connected) return;
    if (
      !grant ||
      evaluate(
        grant.policies,
        { action: 'iot:Connect', resource: iotArn.client(region, accountId, session.clientId) },
        session.context,
      ) !== 'allow'
    ) {
      logger.line('info', 'IOTAUTH', `${session.clientId} refresh refused: disconnecting`);
      await client.disconnect(REASON.notAuthorized, 'AUTH_ERROR');
      return;
    }
    // IoT caches the new policy for the new refreshAfterInSeconds; disconnectAfterInSeconds stays the one of
    // the connect (it bounds the connection's lifetime and is not renewed by refreshes).
    session.policies = grant.policies;
    session.principalId = grant.principalId;
    session.refreshAt = clock() + grant.refreshAfterSeconds * 1000;
    logger.line('debug', 'IOTAUTH', `${session.clientId} policies refreshed`);
    arm(session);
  }

  const broker = createBroker({
    logger,
    now: clock,
    ...(options.brokerLimits ? { limits: options.brokerLimits } : {}),
    hooks: {
      ...(options.rules
        ? {
            onPublish: (client, topic, payload, qos, properties) =>
              options.rules?.onPublish(client, topic, payload, qos, properties) ?? Promise.resolve(),
          }
        : {}),
      async authenticate(request) {
        const connectionId = randomUUID();
        const grant = await authorize(request, connectionId);
        if (!grant) return { ok: false };
        const context: IotPolicyContext = { clientId: request.clientId };
        const resource = iotArn.client(region, accountId, request.clientId);
        if (evaluate(grant.policies, { action: 'iot:Connect', resource }, context) !== 'allow') {
          logger.line('info', 'IOTDENY', `${request.clientId} iot:Connect ${resource}`);
          return { ok: false };
        }
        return { ok: true, principal: new IotSession(request.clientId, request, connectionId, grant, clock()) };
      },
      async authorizePublish(client, topic) {
        const session = sessionOf(client);
        // `$aws/...` is IoT's reserved namespace (lifecycle events, shadows, jobs); no client publishes there.
        if (!session || topic.startsWith('$aws/')) return false;
        session.lastActiveAt = clock();
        return allowed(session, 'iot:Publish', iotArn.topic(region, accountId, topic));
      },
      async authorizeSubscribe(client, filter) {
        const session = sessionOf(client);
        if (session) session.lastActiveAt = clock();
        return session ? allowed(session, 'iot:Subscribe', iotArn.topicfilter(region, accountId, filter)) : false;
      },
      async authorizeDelivery(client, topic) {
        const session = sessionOf(client);
        return session ? allowed(session, 'iot:Receive', iotArn.topic(region, accountId, topic)) : false;
      },
      async onConnected(client) {
        const session = sessionOf(client);
        if (!session) return;
        session.client = client;
        session.versionNumber = (versions.get(client.clientId) ?? -1) + 1;
        versions.set(client.clientId, session.versionNumber);
        sessions.set(client, session);
        arm(session);
        await publishLifecycle(lifecycleTopics.connected(client.clientId), {
          clientId: client.clientId,
          timestamp: clock(),
          eventType: 'connected',
          sessionIdentifier: session.sessionIdentifier,
          principalIdentifier: session.principalId,
          ...(client.remoteAddress ? { ipAddress: ipAddress(client.remoteAddress) } : {}),
          versionNumber: session.versionNumber,
        });
      },
      async onDisconnected(client, info: DisconnectInfo) {
        const session = sessionOf(client);
        if (!session) return;
        clearTimeout(session.timer);
        sessions.delete(client);
        await publishLifecycle(lifecycleTopics.disconnected(client.clientId), {
          clientId: client.clientId,
          // When the connection ended, as IoT stamps it: the handler keeps subscriptions made after this time (a
          // reconnect's rejoin), and the hook itself runs only once the socket has closed, which under load can
          // come after the client has reconnected and rejoined (found by the soak, bench/soak.ts).
          timestamp: info.at ?? clock(),
          eventType: 'disconnected',
          sessionIdentifier: session.sessionIdentifier,
          principalIdentifier: session.principalId,
          ...(client.remoteAddress ? { ipAddress: ipAddress(client.remoteAddress) } : {}),
          versionNumber: session.versionNumber,
          clientInitiatedDisconnect: info.clientInitiated,
          disconnectReason: info.reason,
        });
      },
    },
  });

  return {
    broker,
    async runDueTimers() {
      await Promise.all([...sessions.values()].map((s) => runDue(s)));
    },
    session(clientId) {
      const client = broker.client(clientId);
      return client ? sessions.get(client) : undefined;
    },
    async close() {
      closing = true;
      for (const session of sessions.values()) clearTimeout(session.timer);
      await broker.close();
      for (const session of sessions.values()) clearTimeout(session.timer);
      sessions.clear();
    },
  };
}
