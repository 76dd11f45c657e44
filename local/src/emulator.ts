/**
 * The local emulator in one call: a DynamoDB-API server (or an external endpoint), the dev token issuer,
 * one HTTP port serving the emulated API Gateway WebSocket API, its `@connections` API, the JWKS,
 * `/dev/token`, SQS's JSON API (the fan-out queue), MQTT over WebSocket (`/mqtt`) and IoT's data plane
 * (`/topics/{topic}`, `/connections/{clientId}`), and the IoT Core emulation's MQTT port. The Lambdas are the
 * real handler factories, configured with exactly the environment variables the CDK stack sets in AWS, pointed
 * at the emulator's endpoints; the fan-out worker is invoked by the queue's emulated event source mapping.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { SweepOutcome } from '@viba-realtime/lambdas';
import type { HandlerEnv } from '@viba-realtime/lambdas/handlers/events';
import { createFanoutWorkerHandler } from '@viba-realtime/lambdas/handlers/fanout-worker';
import { createIotAuthorizerHandler } from '@viba-realtime/lambdas/handlers/iot-authorizer';
import { createIotIngressHandler } from '@viba-realtime/lambdas/handlers/iot-ingress';
import { createIotPresenceHandler } from '@viba-realtime/lambdas/handlers/iot-presence';
import { createTokenSweeperHandler } from '@viba-realtime/lambdas/handlers/token-sweeper';
import { createWsAuthorizerHandler } from '@viba-realtime/lambdas/handlers/ws-authorizer';
import { createWsRoutesHandler } from '@viba-realtime/lambdas/handlers/ws-routes';
import {
  CLIENT_CONFIG_VERSION,
  EMULATOR_ENV_OVERRIDES,
  ENV,
  FANOUT_WORKER_HANDLER,
  FUNCTION_ENV,
  IOT_HANDLERS,
  LOCAL_STAGE,
  type RealtimeClientConfig,
  SCHEDULES,
  TOKEN_SWEEPER_HANDLER,
  WS_HANDLERS,
} from '@viba-realtime/protocol';
import type { PublisherConfig } from '@viba-realtime/publisher';
import type { AdminApi } from './admin/api.js';
import { createAdjustableClock } from './admin/clock.js';
import { attachConsole, type EmulatorConsole } from './admin/emulator-console.js';
import { AdminEventBus, teeLogger } from './admin/events.js';
import type { Broker } from './broker/broker.js';
import { MQTT_WS_PATH } from './broker/transports.js';
import { connectDynamoDb, startLocalDynamoDb } from './dynamodb/server.js';
import {
  createFaultInjection,
  type FaultInjector,
  type FaultSetting,
  type FunctionName,
  type LambdaFunction,
} from './faults/index.js';
import { attachConnectionsFaults } from './gateway/connections-api.js';
import type { AuthorizerFunction, GatewayLimits, RoutesFunction } from './gateway/websocket-gateway.js';
import { WebSocketGateway } from './gateway/websocket-gateway.js';
import { createLocalHttpServer, jwksPath } from './http-server.js';
import { createDevIssuer, type DevIssuer } from './identity/dev-issuer.js';
import { attachDataPlaneFaults } from './iot/data-plane.js';
import { createIotCore, type IotAuthorizerFunction, type IotCore } from './iot/iot-core.js';
import { createIotRules, type IotRulesEngine, type IotRuleTargets } from './iot/rules.js';
import { createEmulatorLogger, type LogLevel } from './log.js';
import { isLoopbackUrl } from './loopback.js';
import { LocalSqsQueue, type QueueSettings, type SqsWorkerFunction } from './queue/local-queue.js';
import { LocalSqs } from './queue/sqs-api.js';
import { type LocalSchedule, LocalScheduler } from './scheduler/local-scheduler.js';
import { type Clock, systemClock } from './time.js';

/** Options of {@link startEmulator}. Every field is optional. */
export interface EmulatorOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** HTTP/WebSocket port; 0 picks a free one (tests). @default 4000 */
  port?: number;
  /** @default 'local' (`LOCAL_STAGE`) */
  stage?: string;
  /** Directory for DynamoDB data and the issuer's signing key, so a restart keeps both. @default in memory */
  dataDir?: string;
  /** Use this DynamoDB endpoint (e.g. DynamoDB Local) instead of starting one. */
  dynamodbEndpoint?: string;
  /** @default 'viba-realtime' */
  tableName?: string;
  /** @default 'us-east-1' */
  region?: string;
  /** @default 'us-east-1_LocalDev01' */
  userPoolId?: string;
  /** @default 'localdevclient' */
  clientId?: string;
  /**
   * Which Cognito token uses the authorizer accepts (the handlers' `VIBA_TOKEN_USE`), to emulate a stack
   * configured for one of them. Must not be empty. @default ['id', 'access']
   */
  tokenUse?: readonly TokenUse[];
  /** Overrides of API Gateway's limits (tests). @default APIGW_LIMITS */
  limits?: Partial<GatewayLimits>;
  /** Time of handlers, tokens, events and the TTL sweeper. @default the system clock */
  clock?: Clock;
  /** Where log lines go. @default console.log */
  log?: (line: string) => void;
  /**
   * IoT Core's MQTT port (TCP); 0 picks a free one (tests). MQTT over WebSocket is on `port`, path `/mqtt`.
   * @default 1884, or 0 when `port` is 0: a test asking for a free HTTP port must not collide on 1884 with
   * the other emulators its run starts in parallel.
   */
  mqttPort?: number;
  /**
   * Runs the IoT Core emulation: MQTT on `mqttPort` and `/mqtt`, the data plane on `/topics`, and the rules
   * that route MQTT requests, room sends and lifecycle events to the `iot-ingress` / `iot-presence` Lambdas.
   * `false` runs the WebSocket channel alone. @default true
   */
  iot?: boolean;
  /** The AWS account id in IoT resource ARNs (the handlers' `VIBA_AWS_ACCOUNT_ID`). @default '000000000000' */
  accountId?: string;
  /**
   * Test hook: use this function as the IoT custom authorizer instead of the real handler, e.g. a stub with a
   * wider policy. Emulator only; `npm start` never sets it.
   */
  iotAuthorizer?: IotAuthorizerFunction;
  /** Emulator log level. The handlers' own (JSON) logs follow at `debug` and `silent`; otherwise they show
   * warnings and errors only, so the emulator's one-line-per-call log stays readable. @default 'info' */
  logLevel?: LogLevel;
  /**
   * The fan-out queue (SQS) and the event source mapping that drains it into the `fanout-worker` Lambda:
   * settings to override (`visibilityTimeoutMs`, `maxReceiveCount`, `concurrency`, `batchSize`,
   * `maxMessageBytes`; tests set `visibilityTimeoutMs: 0`), or `false` to run without a queue (the handlers
   * then get no `VIBA_FANOUT_QUEUE_URL` and deliver every fan-out inline). @default QUEUE_DEFAULTS
   */
  fanoutQueue?: Partial<QueueSettings> | false;
  /**
   * Test hook: invoke this function instead of the real `fanout-worker` handler (e.g. one that fails, to watch
   * redeliveries and dead letters). Emulator only; `npm start` never sets it.
   */
  fanoutWorker?: SqsWorkerFunction;
  /**
   * Fault injection (docs/EMULATOR.md, "Fault injection"): `true` turns it on with no rules, a list of rules starts
   * with them, `{ rules, seed, functionTimeoutsMs }` sets everything. On, the emulator also invokes the Lambdas with
   * their stack timeouts, and retries a failed IoT rule invocation twice as Lambda does; `emulator.faults` then
   * adds, lists and removes rules. Off, nothing of it runs. @default false
   */
  faults?: FaultSetting;
  /**
   * The console: a web page at `/` and its admin API under `/_admin/` (docs/EMULATOR.md, "Console"), for this
   * machine only. `false` turns both off; `{ allowRemote: true }` serves them beyond this machine too, so that
   * anyone who can reach the port can act as any user. With the console on, the emulator's clock is one the
   * console can move forward. @default true
   */
  console?: boolean | { allowRemote?: boolean };
  /**
   * Runs the scheduled functions (the contract's `SCHEDULES`, EventBridge rules in AWS) on the emulator's clock:
   * the token sweeper every minute. `false` runs them only when asked (`emulator.scheduler.run(...)`), for tests
   * that must not see a sweep between two steps. @default true
   */
  schedules?: boolean;
}

/** A running emulator. */
export interface Emulator {
  /** `ws://host:port/local`: where clients connect (token in `?token=`). */
  url: string;
  /** `http://host:port`. */
  httpUrl: string;
  /** `http://host:port/local`: the `endpoint` for `ApiGatewayManagementApiClient`. */
  connectionsEndpoint: string;
  dynamodbEndpoint: string;
  tableName: string;
  userPoolId: string;
  clientId: string;
  /** `http://host:port/{userPoolId}/.well-known/jwks.json` */
  jwksUri: string;
  issuer: DevIssuer;
  /** The API Gateway emulation, with its emulator-only test hooks (`vanish`, `injectPostFaults`, ...). */
  gateway: WebSocketGateway;
  /** `mqtt://host:mqttPort`: IoT Core over MQTT (TCP); undefined with `iot: false`. */
  mqttUrl: string | undefined;
  /** `ws://host:port/mqtt`: IoT Core over MQTT over WebSocket; undefined with `iot: false`. */
  mqttWsUrl: string | undefined;
  /** `http://host:port`: the `endpoint` for `IoTDataPlaneClient`; undefined with `iot: false`. */
  iotDataEndpoint: string | undefined;
  /** The IoT Core emulation's broker (tests); undefined with `iot: false`. */
  broker: Broker | undefined;
  /** The IoT Core emulation with its test hooks (`runDueTimers`, `session`); undefined with `iot: false`. */
  iot: IotCore | undefined;
  /** `http://host:port`: the `endpoint` for `SQSClient` (`VIBA_SQS_ENDPOINT`). */
  sqsEndpoint: string;
  /** `http://host:port/{accountId}/viba-realtime-fanout` (`VIBA_FANOUT_QUEUE_URL`); undefined with
   * `fanoutQueue: false`. A backend publisher configured with it and {@link Emulator.sqsEndpoint} queues here. */
  fanoutQueueUrl: string | undefined;
  /** The fan-out queue with its test hooks (`idle()`, `deadLetters`, `stats`); undefined with `fanoutQueue: false`. */
  fanoutQueue: LocalSqsQueue | undefined;
  /** Every setting the handlers were built from (the names the CDK stack sets); each handler got only its own
   * share of it (`FUNCTION_ENV` in the protocol) and the emulator's endpoint overrides. */
  env: HandlerEnv;
  /** What a client app needs (`createRealtimeClient({ config })`), as served at `GET /dev/client-config`. */
  clientConfig: RealtimeClientConfig;
  /** `http://host:port/`: the console page; undefined with `console: false`. */
  consoleUrl: string | undefined;
  /** The console's event stream and adjustable clock (tests); undefined with `console: false`. */
  console: EmulatorConsole | undefined;
  /** The fault rules in force and their counters (`add`, `list`, `get`, `remove`, `clear`); undefined unless
   * started with `faults`. */
  faults: FaultInjector | undefined;
  /** The scheduled functions (EventBridge rules in AWS), with test hooks: `run(name)` invokes one now,
   * `runDue()` runs what the clock made due, `idle()`. With `schedules: false` nothing runs by itself. */
  scheduler: LocalScheduler;
  /** Closes every MQTT connection and WebSocket connection (each gets `$disconnect`), then the servers. */
  close(): Promise<void>;
}

/** A Cognito token's `token_use`. */
export type TokenUse = 'id' | 'access';

/** Every token use, in the order `VIBA_TOKEN_USE` lists them by default. */
export const TOKEN_USES: readonly TokenUse[] = ['id', 'access'];

/** Whether a string is a {@link TokenUse}. */
export function isTokenUse(value: string): value is TokenUse {
  return (TOKEN_USES as readonly string[]).includes(value);
}

/** The IoT custom authorizer's name in the emulator's client config. IoT Core needs clients to name the
 * authorizer (no default is set for the endpoint); the emulator has one authorizer and accepts any name. */
export const LOCAL_IOT_AUTHORIZER_NAME = 'viba-realtime-local_authorizer';

/** The fan-out queue's name: its URL is `{httpUrl}/{accountId}/viba-realtime-fanout`. */
export const FANOUT_QUEUE_NAME = 'viba-realtime-fanout';

/** The defaults of {@link EmulatorOptions}, merged once. */
export const EMULATOR_DEFAULTS = {
  host: '127.0.0.1',
  port: 4000,
  mqttPort: 1884,
  accountId: '000000000000',
  stage: LOCAL_STAGE,
  tableName: 'viba-realtime',
  region: 'us-east-1',
  userPoolId: 'us-east-1_LocalDev01',
  clientId: 'localdevclient',
  logLevel: 'info' as LogLevel,
  tokenUse: TOKEN_USES,
} as const;

/** Thrown when the port is taken, with the flag to use instead. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  constructor(
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown; flag?: string },
  ) {
    super(
      `${host}:${port} is already in use. Stop the other process or pick another port with ${options?.flag ?? '--port (or VIBA_LOCAL_PORT)'}.`,
      options,
    );
  }
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(error.code === 'EADDRINUSE' ? new PortInUseError(host, port, { cause: error }) : error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // A reconnect storm (every client at once) overflows Node's default backlog of 511 and the kernel resets
    // the excess; AWS's edge absorbs such storms, so the emulator should not add resets of its own
    // (measured by bench/soak.ts: 4096 removed them).
    server.listen({ port, host, backlog: 4096 });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

/** Host for URLs: a wildcard listen address is reached on loopback; IPv6 needs brackets. */
function urlHost(host: string): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return reachable.includes(':') ? `[${reachable}]` : reachable;
}

/**
 * Starts the emulator.
 * @example
 * const emulator = await startEmulator({ port: 0, logLevel: 'silent' });
 * const { idToken } = emulator.issuer.mintPair({ sub: 'alice' });
 * const ws = new WebSocket(`${emulator.url}?token=${idToken}`);
 * // ...
 * await emulator.close();
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  // Validated before anything starts, like tokenUse below.
  if (
    options.mqttPort !== undefined &&
    (!Number.isInteger(options.mqttPort) || options.mqttPort < 0 || options.mqttPort > 65535)
  )
    throw new RangeError(`mqttPort must be a port number 0-65535, got ${options.mqttPort}.`);
  const o = { ...EMULATOR_DEFAULTS, ...stripUndefined(options) };
  const consoleOn = o.console !== false;
  const allowRemote = typeof o.console === 'object' && o.console.allowRemote === true;
  // The console moves time forward for everything that reads this clock (tokens, TTL, events, IoT's timers).
  const adjustableClock = consoleOn ? createAdjustableClock(o.clock ?? systemClock) : undefined;
  const clock = adjustableClock ?? o.clock ?? systemClock;
  // An empty list would make the handlers refuse every token; a typo from JS callers would fail only at
  // the first connect. Both are configuration mistakes, reported before anything starts.
  const badUse = o.tokenUse.find((use) => !isTokenUse(use));
  if (o.tokenUse.length === 0 || badUse !== undefined)
    throw new TypeError(`tokenUse must list 'id' and/or 'access'${badUse === undefined ? '' : `, got "${badUse}"`}.`);
  const events = consoleOn ? new AdminEventBus({ clock }) : undefined;
  const printed = createEmulatorLogger({ level: o.logLevel, clock, ...(o.log ? { log: o.log } : {}) });
  const logger = events ? teeLogger(printed, events) : printed;
  const cleanups: (() => Promise<void>)[] = [];
  // Before anything starts: a bad rule is a configuration mistake, like a bad tokenUse.
  const faults = createFaultInjection(o.faults, {
    logger,
    region: o.region,
    accountId: o.accountId,
    unavailable: {
      ...(o.dynamodbEndpoint ? { dynamodb: 'the emulator uses an external DynamoDB (--dynamodb-endpoint)' } : {}),
      ...(o.iot === false ? { 'iot-publish': 'the emulator runs without IoT Core (--no-iot)' } : {}),
    },
  });
  /** A Lambda as the emulator invokes it: with fault injection, under Lambda's timeout and faults. */
  const lambda = <E, R>(name: FunctionName, fn: LambdaFunction<E, R>) => (faults ? faults.host.wrap(name, fn) : fn);

  try {
    let dynamodbEndpoint: string;
    if (o.dynamodbEndpoint) {
      await connectDynamoDb(o.dynamodbEndpoint, o.tableName);
      dynamodbEndpoint = o.dynamodbEndpoint;
    } else {
      const db = await startLocalDynamoDb({
        tableName: o.tableName,
        host: '127.0.0.1',
        clock,
        ...(o.dataDir ? { dataDir: join(o.dataDir, 'dynamodb') } : {}),
        ...(faults ? { faults: faults.injector.hook('dynamodb') } : {}),
      });
      cleanups.push(() => db.close());
      dynamodbEndpoint = db.endpoint;
    }

    const issuer = createDevIssuer({
      region: o.region,
      userPoolId: o.userPoolId,
      clientId: o.clientId,
      clock,
      ...(o.dataDir ? { keyFile: join(o.dataDir, 'dev-issuer-key.json') } : {}),
    });

    // The handlers need the port in their env, and the gateway needs the handlers: the gateway calls
    // through these holders, which are filled once the port is known and before anyone can connect.
    let authorizer: AuthorizerFunction | undefined;
    let routes: RoutesFunction | undefined;
    let iotAuthorizer: IotAuthorizerFunction | undefined;
    let ruleTargets: IotRuleTargets | undefined;
    const notReady = () => Promise.reject(new Error('emulator handlers are not wired yet'));
    const gateway = new WebSocketGateway({
      authorizer: (event, context) => (authorizer ? authorizer(event, context) : notReady()),
      routes: (event, context) => (routes ? routes(event, context) : notReady()),
      stage: o.stage,
      region: o.region,
      clock,
      logger,
      ...(o.limits ? { limits: o.limits } : {}),
    });
    if (faults) attachConnectionsFaults(gateway, faults.injector.hook('connections'));
    // Publishes before the handlers are wired find no targets and trigger nothing (nobody can connect yet).
    const rules: IotRulesEngine | undefined = o.iot === false ? undefined : createIotRules(() => ruleTargets, logger);
    const iot =
      rules === undefined
        ? undefined
        : createIotCore({
            rules,
            authorizer: (event, context) => (iotAuthorizer ? iotAuthorizer(event, context) : notReady()),
            region: o.region,
            accountId: o.accountId,
            clock,
            logger,
            serverName: urlHost(o.host).replace(/^\[|\]$/g, ''),
          });
    if (faults && iot) attachDataPlaneFaults(iot.broker, faults.injector.hook('iot-publish'));
    // Created before anything can send to it; the worker is attached once the handlers are built.
    const sqs = new LocalSqs();
    const fanoutQueue =
      o.fanoutQueue === false
        ? undefined
        : sqs.add(
            new LocalSqsQueue({
              name: FANOUT_QUEUE_NAME,
              accountId: o.accountId,
              region: o.region,
              clock,
              logger,
              settings: o.fanoutQueue ?? {},
              functionName: 'viba-fanout-worker',
            }),
          );
    // Set once the ports are known (below); `/dev/config` answers 404 until then.
    let publisherConfig: Record<string, unknown> | undefined;
    let clientConfig: RealtimeClientConfig | undefined;
    let admin: AdminApi | undefined;
    const server = createLocalHttpServer({
      gateway,
      issuer,
      logger,
      sqs,
      publisherConfig: () => publisherConfig,
      clientConfig: () => clientConfig,
      ...(iot ? { broker: iot.broker } : {}),
      ...(consoleOn ? { admin: () => admin } : {}),
    });
    const port = await listen(server, o.port, o.host);
    cleanups.push(() => closeServer(server));
    // Runs after the gateway and the broker closed (cleanups run newest first), so the fan-outs their last
    // `$disconnect` / lifecycle handlers queue are accepted, and before the HTTP server and DynamoDB close, so
    // the worker invocations in flight finish against live endpoints. What is left is dropped with a warning.
    cleanups.push(() => sqs.close());
    cleanups.push(() => gateway.close());
    let mqttPort: number | undefined;
    if (iot) {
      // Run after the broker closed (cleanups run newest first): its last `disconnected` events reach the
      // presence Lambda while DynamoDB and the data plane are still up.
      cleanups.push(() => rules?.idle() ?? Promise.resolve());
      // Pushed before listening: a failed listen must still close the broker.
      cleanups.push(() => iot.close());
      mqttPort = await listenMqtt(iot.broker, options.mqttPort ?? (o.port === 0 ? 0 : o.mqttPort), o.host);
    }

    const httpUrl = `http://${urlHost(o.host)}:${port}`;
    const connectionsEndpoint = `${httpUrl}/${o.stage}`;
    const jwksUri = `${httpUrl}${jwksPath(o.userPoolId)}`;
    const fanoutQueueUrl = fanoutQueue ? `${httpUrl}${fanoutQueue.path}` : undefined;
    const env: HandlerEnv = Object.freeze({
      [ENV.tableName]: o.tableName,
      [ENV.userPoolId]: o.userPoolId,
      [ENV.clientIds]: o.clientId,
      [ENV.tokenUse]: [...new Set(o.tokenUse)].join(','),
      [ENV.connectionsEndpoint]: connectionsEndpoint,
      // MQTT deliveries go to the emulator's data plane (`POST /topics/{topic}`), as to IoT's in AWS.
      ...(iot ? { [ENV.iotEndpoint]: httpUrl } : {}),
      // Large fan-outs are queued on the emulator's SQS (`SendMessageBatch` on the HTTP port), as on SQS in AWS.
      ...(fanoutQueueUrl ? { [ENV.fanoutQueueUrl]: fanoutQueueUrl, [ENV.sqsEndpoint]: httpUrl } : {}),
      [ENV.dynamodbEndpoint]: dynamodbEndpoint,
      [ENV.jwksUri]: jwksUri,
      [ENV.logLevel]: handlerLogLevel(o.logLevel),
      // The IoT authorizer's policies name resources by ARN, which includes the account.
      [ENV.iotAccountId]: o.accountId,
      AWS_REGION: o.region,
      // Dummy credentials for the emulator's own services; a real table (a non-loopback endpoint) needs the
      // user's, which the SDK's default chain finds when none are given here.
      ...(isLoopbackUrl(dynamodbEndpoint) ? { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' } : {}),
    });
    // What a backend publisher needs to reach this emulator: the same endpoints the handlers use.
    publisherConfig = {
      tableName: o.tableName,
      connectionsEndpoint,
      region: o.region,
      dynamodbEndpoint,
      ...(iot ? { iotEndpoint: httpUrl } : {}),
      ...(fanoutQueueUrl ? { fanoutQueueUrl, sqsEndpoint: httpUrl } : {}),
      ...(isLoopbackUrl(dynamodbEndpoint) ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
    };
    // What a client app needs, in the shape of the CDK stack's `ClientConfig` output.
    clientConfig = {
      version: CLIENT_CONFIG_VERSION,
      region: o.region,
      userPoolId: o.userPoolId,
      userPoolClientIds: [o.clientId],
      websocket: { url: `ws://${urlHost(o.host)}:${port}/${o.stage}` },
      ...(iot
        ? { mqtt: { url: `ws://${urlHost(o.host)}:${port}${MQTT_WS_PATH}`, authorizerName: LOCAL_IOT_AUTHORIZER_NAME } }
        : {}),
    };
    const envFor = (name: FunctionName) => functionEnvironment(env, name);
    authorizer = lambda(WS_HANDLERS.authorizer, createWsAuthorizerHandler(envFor(WS_HANDLERS.authorizer), { clock }));
    routes = lambda(WS_HANDLERS.routes, createWsRoutesHandler(envFor(WS_HANDLERS.routes), { clock }));
    if (iot) {
      iotAuthorizer = lambda(
        IOT_HANDLERS.authorizer,
        o.iotAuthorizer ?? createIotAuthorizerHandler(envFor(IOT_HANDLERS.authorizer), { clock }),
      );
      // IoT invokes rule Lambdas asynchronously: Lambda retries a failed invocation (with faults on).
      const rule = <E, R>(name: FunctionName, fn: LambdaFunction<E, R>) =>
        faults ? faults.host.wrapAsync(name, fn) : fn;
      ruleTargets = {
        ingress: rule(IOT_HANDLERS.ingress, createIotIngressHandler(envFor(IOT_HANDLERS.ingress), { clock })),
        presence: rule(IOT_HANDLERS.presence, createIotPresenceHandler(envFor(IOT_HANDLERS.presence), { clock })),
      };
    }
    // The event source mapping invokes the worker with the same environment (its `@connections` and IoT
    // endpoints, and the queue for re-queues of failed deliveries).
    fanoutQueue?.attach(
      lambda(
        FANOUT_WORKER_HANDLER,
        o.fanoutWorker ?? createFanoutWorkerHandler(envFor(FANOUT_WORKER_HANDLER), { clock }),
      ),
    );
    // EventBridge invokes its targets asynchronously, but the stack turns Lambda's retries off for scheduled
    // functions (the next period runs again), so a failed run is not retried here either.
    const scheduled: Record<(typeof SCHEDULES)[number]['handler'], Omit<LocalSchedule, 'handler' | 'rateMinutes'>> = {
      [TOKEN_SWEEPER_HANDLER]: {
        fn: createTokenSweeperHandler(envFor(TOKEN_SWEEPER_HANDLER), { clock }),
        describe: describeSweep,
      },
    };
    const scheduler = new LocalScheduler({
      schedules: SCHEDULES.map(({ handler, rateMinutes }) => {
        const { fn, describe } = scheduled[handler];
        return {
          handler,
          rateMinutes,
          fn: faults ? faults.host.wrap(handler, fn) : fn,
          ...(describe ? { describe } : {}),
        };
      }),
      clock,
      logger,
      region: o.region,
      accountId: o.accountId,
      paused: o.schedules === false,
    });
    // Runs before the gateway closes (cleanups run newest first): a sweep in flight finishes against it.
    cleanups.push(() => scheduler.close());

    let closed: Promise<void> | undefined;
    const emulator: Emulator = {
      url: `ws://${urlHost(o.host)}:${port}/${o.stage}`,
      httpUrl,
      connectionsEndpoint,
      dynamodbEndpoint,
      tableName: o.tableName,
      userPoolId: o.userPoolId,
      clientId: o.clientId,
      jwksUri,
      issuer,
      gateway,
      mqttUrl: mqttPort === undefined ? undefined : `mqtt://${urlHost(o.host)}:${mqttPort}`,
      mqttWsUrl: iot ? `ws://${urlHost(o.host)}:${port}${MQTT_WS_PATH}` : undefined,
      iotDataEndpoint: iot ? httpUrl : undefined,
      broker: iot?.broker,
      iot,
      sqsEndpoint: httpUrl,
      fanoutQueueUrl,
      fanoutQueue,
      env,
      clientConfig: clientConfig as RealtimeClientConfig,
      faults: faults?.injector,
      scheduler,
      consoleUrl: consoleOn ? `${httpUrl}/` : undefined,
      console:
        events && adjustableClock ? { url: `${httpUrl}/`, events, clock: adjustableClock, allowRemote } : undefined,
      close() {
        closed ??= runCleanups(cleanups);
        return closed;
      },
    };
    if (events && adjustableClock) {
      const api = attachConsole(emulator, {
        events,
        clock: adjustableClock,
        logger,
        allowRemote,
        publisherConfig: publisherConfig as unknown as PublisherConfig,
        handlerLogLevel: handlerLogLevel(o.logLevel) as LogLevel,
      });
      admin = api;
      // Runs first (cleanups run newest first): the console's own user connections close with the others.
      cleanups.push(() => api.close());
    }
    return emulator;
  } catch (error) {
    await runCleanups(cleanups).catch(() => undefined);
    throw error;
  }
}

/** Puts the broker on TCP, reporting a taken port with the flag that changes it. */
async function listenMqtt(broker: Broker, port: number, host: string): Promise<number> {
  try {
    return (await broker.listenTcp({ host, port })).port;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new PortInUseError(host, port, { cause: error, flag: '--mqtt-port (or VIBA_LOCAL_MQTT_PORT)' });
    throw error;
  }
}

/** Newest first: connections close (and run `$disconnect`) before the servers they need go away. */
async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const cleanup of [...cleanups].reverse()) {
    try {
      await cleanup();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'emulator did not close cleanly');
}

/**
 * The share of the emulator's settings one function gets: what the stack gives it (`FUNCTION_ENV`), the
 * emulator's endpoint overrides and the `AWS_*` variables Lambda's runtime sets; nothing more, so a handler
 * cannot come to rely locally on a setting it lacks in AWS.
 */
export function functionEnvironment(all: HandlerEnv, name: FunctionName): HandlerEnv {
  const allowed = new Set<string>([...FUNCTION_ENV[name], ...EMULATOR_ENV_OVERRIDES]);
  return Object.freeze(
    Object.fromEntries(Object.entries(all).filter(([key]) => allowed.has(key) || key.startsWith('AWS_'))),
  );
}

/** The token sweeper's answer as a log line, when it closed anything. */
function describeSweep(answer: unknown): string | undefined {
  const { closed = 0, gone = 0, failed = 0 } = (answer ?? {}) as Partial<SweepOutcome>;
  if (closed + gone + failed === 0) return undefined;
  const parts = [`closed ${closed} WebSocket connection${closed === 1 ? '' : 's'} with an expired token`];
  if (gone > 0) parts.push(`removed ${gone} already gone`);
  if (failed > 0) parts.push(`${failed} failed (retried next run)`);
  return parts.join(', ');
}

function handlerLogLevel(level: LogLevel): string {
  return level === 'debug' || level === 'silent' || level === 'error' ? level : 'warn';
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
