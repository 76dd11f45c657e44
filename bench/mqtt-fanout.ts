/**
 * Fan-out benchmark, MQTT channel (issue 7, item 1): N MQTT.js subscribers (QoS 0, MQTT 3.1.1 over TCP,
 * `TCP_NODELAY` on both ends) on one topic receive M server-side publishes, on
 * - the emulator's IoT Core broker: each subscriber a distinct user, connected with a real token (the custom
 *   authorizer runs per connect), subscribed to `rt/announcements`, so every delivery passes the emulator's
 *   `iot:Receive` policy check. Two publisher paths:
 *   - `emulator-data-plane`: the service's own `IotDelivery.publish` (the `IoTDataPlaneClient`
 *     `PublishCommand` the Lambdas use, QoS 1 as they publish it) against the emulator's data plane
 *     (`POST /topics/rt%2Fannouncements` over loopback HTTP);
 *   - `emulator-in-process`: the broker's own server-side `broker.publish` (what the data plane calls), to
 *     separate the HTTP data plane's cost from the broker's;
 * - a bare aedes broker (MQTT 3.1.1, no authentication) in the same run, the baseline, with
 *   - `aedes-in-process`: `aedes.publish` (the counterpart of `emulator-in-process`), and
 *   - `aedes-mqtt`: one MQTT.js publisher client over TCP.
 *
 * Method (identical for every scenario):
 * - N subscribers connect (32 at a time) and subscribe at QoS 0; each delivery is therefore QoS 0 whatever
 *   the publish QoS. Connect + subscribe time is reported apart from the throughput. Memory per connection
 *   is the heap / RSS growth (after a full GC, once the setup's background work died down) from connecting
 *   the N subscribers, divided by N; client and broker side both live in this process.
 * - Every payload is the same announcement frame (`{"type":"announcement",...,"body":{"s","k","t",...}}`):
 *   `s` names the scenario, `k` the message, `t` is `performance.now()` when the message was built, just
 *   before the publish call; one process, so the clocks agree. Each subscriber JSON-parses it, counts a
 *   second arrival of (subscriber, k) as a duplicate and records the latency now - t.
 * - Pacing is closed-loop at the receivers: at most `window` (default 16) messages are in flight, a message
 *   leaving the window when its publish call returned AND all N subscribers got it. The brokers' own
 *   acknowledgements mean different things (aedes calls back once every subscriber's packet was written, the
 *   emulator's data plane answers once the deliveries are queued), so only the receivers are a common clock;
 *   no target is ever driven into overload, and latency is comparable across scenarios.
 * - Wall time runs from the first publish to the last first-time delivery. CPU is this process's user +
 *   system time over the send phase: broker(s), publisher and the N receiving clients share the process and
 *   the cores, so the absolute figures overstate a broker's own cost; the ratios are the meaningful figures.
 * - Losses: neither broker drops QoS 0 messages here (aedes waits for `drain`, the emulator queues without
 *   bound) and pacing keeps both far from overload, so any loss is a bug and fails the run, as does any
 *   duplicate, a failed publish, or a stall (no delivery at all for `stallMs`).
 *
 * Run: `npm run bench -- --only mqtt-fanout [--quick] [--clients N] [--messages M] [--window W]
 * [--scenarios aedes-in-process,aedes-mqtt,emulator-data-plane,emulator-in-process] [--budget-ms MS]
 * [--deadline-ms MS] [--profile]`, or `npx tsx bench/mqtt-fanout.ts ...`.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createLogger, IotDelivery } from '@viba-realtime/lambdas';
import { startEmulator } from '@viba-realtime/local';
import { type AnnouncementFrame, clientIdFor, topics } from '@viba-realtime/protocol';
import { Aedes } from 'aedes';
import { type IClientOptions, MqttClient } from 'mqtt';
import {
  type BenchArgs,
  cpuStopwatch,
  forEachLimit,
  formatNumber,
  intFlag,
  memorySample,
  type Percentiles,
  parseBenchArgs,
  percentiles,
  printTable,
  RESULTS_DIR,
  ratio,
  runAsScript,
  startCpuProfile,
  type TableRow,
  waitForQuietCpu,
  withDeadline,
  writeResult,
} from './lib/index.js';

export type MqttTargetName = 'aedes' | 'emulator';
export type MqttScenarioName = 'aedes-in-process' | 'aedes-mqtt' | 'emulator-data-plane' | 'emulator-in-process';

/** Every scenario, in the order they run (baseline first, as in ws-fanout). */
export const MQTT_SCENARIOS: readonly MqttScenarioName[] = [
  'aedes-in-process',
  'aedes-mqtt',
  'emulator-data-plane',
  'emulator-in-process',
];

const SCENARIO_TARGET: Record<MqttScenarioName, MqttTargetName> = {
  'aedes-in-process': 'aedes',
  'aedes-mqtt': 'aedes',
  'emulator-data-plane': 'emulator',
  'emulator-in-process': 'emulator',
};

/** What the issue 7 target (>= 60%) is judged on: broker against broker, same (in-process) publisher. */
export const JUDGED_RATIO = { emulator: 'emulator-in-process', baseline: 'aedes-in-process' } as const;
/** Reported next to it: the service's real publish path against the same baseline. */
export const SERVICE_PATH_RATIO = { emulator: 'emulator-data-plane', baseline: 'aedes-in-process' } as const;

/** Options of {@link runMqttFanout}. */
export interface MqttFanoutOptions {
  /** Short sizes (50 clients, 50 messages) for a smoke run. Explicit sizes below win. @default false */
  quick?: boolean;
  /** Subscribers N, each its own connection (and, on the emulator, its own user). @default 1000 (quick 50) */
  clients?: number;
  /** Messages M published per scenario. @default 1000 (quick 50) */
  messages?: number;
  /** Messages in flight (published, not yet received by all N). @default 16 */
  window?: number;
  /** Characters of filler text in each message body (besides its numbers). @default 64 */
  textLength?: number;
  /** Connects (CONNECT + SUBSCRIBE) in flight. @default 32 */
  connectConcurrency?: number;
  /** Time budget of each send phase, ms: no new message after it; the figures cover the messages sent.
   * @default 60000 */
  sendBudgetMs?: number;
  /** A send phase with no delivery at all for this long is stopped and its missing deliveries counted lost.
   * @default 10000 */
  stallMs?: number;
  /** Deadline of each wait (setup, send phase, close), ms; a guard, not a budget. @default 180000 */
  deadlineMs?: number;
  /** When set, each send phase is CPU-profiled into this directory. */
  profileDir?: string;
  /** Which scenarios to run. @default all of {@link MQTT_SCENARIOS} */
  scenarios?: readonly MqttScenarioName[];
}

/** What one scenario measured. Latencies in ms, memory in bytes. */
export interface MqttFanoutMeasurement {
  scenario: MqttScenarioName;
  target: MqttTargetName;
  clients: number;
  messages: number;
  /** Messages published: `messages`, unless the budget, a stall or a failed publish stopped it first. */
  messagesSent: number;
  truncated: boolean;
  /** clients × messagesSent. */
  expected: number;
  /** Distinct (subscriber, message) pairs received. */
  delivered: number;
  lost: number;
  duplicated: number;
  /** Payloads that were not this scenario's messages, on an unexpected topic, or not parseable. */
  errors: number;
  /** Publish calls that failed (the first error's text is in `publishError`). */
  publishErrors: number;
  publishError?: string;
  /** True when no delivery arrived for `stallMs` and the send phase was stopped. */
  stalled: boolean;
  /** True when the send phase hit the deadline (the figures then cover what arrived). */
  timedOut: boolean;
  /** Connecting and subscribing the N subscribers of this target (shared by its scenarios). */
  connectSeconds: number;
  /** First publish to last first-time delivery. */
  wallSeconds: number;
  deliveriesPerSecond: number;
  latencyMs: Percentiles;
  /** Process CPU (user + system) over the send phase: brokers, publisher and subscribers together. */
  cpuSeconds: number;
  cpuSecondsPerMillionDeliveries: number;
  coresBusy: number;
  /** Of this target (shared by its scenarios): growth from connecting N idle subscribers, client side included. */
  heapBytesPerConnection: number;
  rssBytesPerConnection: number;
  /** Closing the N subscribers and the target (shared by its scenarios). */
  closeSeconds: number;
  /** False when the setup's background work had not died down 30 s after connecting (figures may suffer). */
  setupSettled: boolean;
  cpuProfile?: string;
}

/** Result of {@link runMqttFanout}. */
export interface MqttFanoutResult {
  options: Required<Omit<MqttFanoutOptions, 'quick' | 'profileDir'>> & { quick: boolean; profileDir?: string };
  measurements: Partial<Record<MqttScenarioName, MqttFanoutMeasurement>>;
  /** `emulator scenario / baseline scenario` → figure → ratio, for each pair that ran. */
  ratios: Record<string, Record<string, number>>;
  /** The issue's targets (only the figures whose scenarios ran). */
  targets: {
    /** {@link JUDGED_RATIO}'s deliveries/s ratio, and whether it is at least 0.6 (the issue 7 target). */
    brokerRatio?: number;
    brokerAtLeast60Percent?: boolean;
    /** {@link SERVICE_PATH_RATIO}'s deliveries/s ratio (reported, not the judged target). */
    servicePathRatio?: number;
    servicePathAtLeast60Percent?: boolean;
    noLossNoDuplicates: boolean;
  };
  notes: string[];
}

const TOPIC = topics.announcements;

/** A publisher path of a scenario. */
interface Publisher {
  publish(frame: AnnouncementFrame): Promise<void>;
  close(): Promise<void>;
}

/** A started broker under test. */
interface Target {
  name: MqttTargetName;
  host: string;
  port: number;
  /** CONNECT fields of subscriber `i` (minted up front on the emulator, outside the timed connect). */
  credentials(i: number): { clientId: string; username?: string; password?: string };
  publisher(scenario: MqttScenarioName): Promise<Publisher>;
  close(): Promise<void>;
}

/** MQTT.js on a TCP socket with Nagle off from the first byte (MQTT.js leaves it on). */
function mqttClient(host: string, port: number, options: IClientOptions): MqttClient {
  return new MqttClient(() => createConnection({ host, port, noDelay: true }), {
    protocolVersion: 4,
    clean: true,
    keepalive: 600,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    ...options,
  });
}

function connected(client: MqttClient): Promise<void> {
  return new Promise((resolve, reject) => {
    const onConnect = () => {
      client.off('error', onError);
      resolve();
    };
    const onError = (error: Error) => {
      client.off('connect', onConnect);
      client.end(true);
      reject(error);
    };
    client.once('connect', onConnect);
    client.once('error', onError);
  });
}

function endClient(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

async function startEmulatorTarget(clients: number): Promise<Target> {
  const emulator = await startEmulator({ port: 0, logLevel: 'silent' });
  let url: URL;
  let tokens: string[];
  try {
    if (emulator.mqttUrl === undefined) throw new Error('the emulator runs without IoT');
    url = new URL(emulator.mqttUrl);
    tokens = Array.from({ length: clients }, (_, i) =>
      emulator.issuer.mint({ sub: `bench-u${i}`, tokenUse: 'id', ttlSeconds: 3600 }),
    );
  } catch (error) {
    await emulator.close();
    throw error;
  }
  return {
    name: 'emulator',
    host: url.hostname,
    port: Number(url.port),
    credentials: (i) => ({
      clientId: clientIdFor(`bench-u${i}`, 'b'),
      username: 'bench',
      password: tokens[i] as string,
    }),
    async publisher(scenario) {
      if (scenario === 'emulator-in-process') {
        const broker = emulator.broker;
        if (!broker) throw new Error('the emulator runs without IoT');
        return {
          publish: async (frame) => {
            await broker.publish(TOPIC, JSON.stringify(frame), { qos: 0 });
          },
          close: async () => undefined,
        };
      }
      // The service's own publisher: the Lambdas' IotDelivery with their client settings.
      const delivery = new IotDelivery({
        endpoint: emulator.iotDataEndpoint as string,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        log: createLogger('silent'),
      });
      return {
        publish: async (frame) => {
          const outcome = await delivery.publish(TOPIC, frame);
          if (outcome !== 'delivered') throw new Error(`IotDelivery.publish: ${outcome}`);
        },
        close: async () => delivery.client.destroy(),
      };
    },
    close: () => emulator.close(),
  };
}

/** The baseline: a bare aedes broker on 127.0.0.1, no authentication, `TCP_NODELAY` on its sockets. */
async function startAedesTarget(): Promise<Target> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    name: 'aedes',
    host: '127.0.0.1',
    port,
    credentials: (i) => ({ clientId: clientIdFor(`bench-u${i}`, 'b') }),
    async publisher(scenario) {
      if (scenario === 'aedes-in-process') {
        return {
          publish: (frame) =>
            new Promise<void>((resolve, reject) =>
              aedes.publish(
                {
                  cmd: 'publish',
                  topic: TOPIC,
                  payload: Buffer.from(JSON.stringify(frame)),
                  qos: 0,
                  retain: false,
                  dup: false,
                },
                (error) => (error ? reject(error) : resolve()),
              ),
            ),
          close: async () => undefined,
        };
      }
      const client = mqttClient('127.0.0.1', port, { clientId: 'bench-publisher' });
      await connected(client);
      // A later socket error fails the publish calls instead of crashing the process.
      client.on('error', () => undefined);
      return {
        publish: async (frame) => {
          await client.publishAsync(TOPIC, JSON.stringify(frame), { qos: 0 });
        },
        close: () => endClient(client),
      };
    },
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The tallies of one scenario's send phase, over every subscriber. */
class Sink {
  readonly seen: Uint8Array;
  readonly arrivals: Uint32Array;
  readonly latencies: Float64Array;
  count = 0;
  duplicated = 0;
  errors = 0;
  lastArrival = 0;
  readonly #waiters = new Map<number, () => void>();

  constructor(
    readonly tag: number,
    readonly clients: number,
    readonly messages: number,
  ) {
    this.seen = new Uint8Array(clients * messages);
    this.arrivals = new Uint32Array(messages);
    this.latencies = new Float64Array(clients * messages);
  }

  arrived(subscriber: number, topic: string, payload: Buffer): void {
    const now = performance.now();
    let body: { s?: unknown; k?: unknown; t?: unknown } | undefined;
    try {
      body = (JSON.parse(payload.toString()) as AnnouncementFrame).body;
    } catch {
      body = undefined;
    }
    const k = body?.k;
    if (topic !== TOPIC || body?.s !== this.tag || typeof k !== 'number' || !(k >= 0 && k < this.messages)) {
      this.errors++;
      return;
    }
    const index = subscriber * this.messages + k;
    if (this.seen[index] === 1) {
      this.duplicated++;
      return;
    }
    this.seen[index] = 1;
    this.latencies[this.count++] = now - (body.t as number);
    this.lastArrival = now;
    const arrivals = (this.arrivals[k] as number) + 1;
    this.arrivals[k] = arrivals;
    if (arrivals >= this.clients) {
      const waiter = this.#waiters.get(k);
      if (waiter) {
        this.#waiters.delete(k);
        waiter();
      }
    }
  }

  /** Resolves once every subscriber has message `k` (or {@link release} gave up waiting). */
  complete(k: number): Promise<void> {
    if ((this.arrivals[k] as number) >= this.clients) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.set(k, resolve));
  }

  /** Ends every wait (a stall). */
  release(): void {
    for (const waiter of this.#waiters.values()) waiter();
    this.#waiters.clear();
  }
}

/** The N subscribers of one target. */
class Subscribers {
  readonly clients: MqttClient[] = [];
  sink: Sink | undefined;
  /** Messages that arrived while no send phase was running. */
  strays = 0;

  async connect(target: Target, n: number, concurrency: number): Promise<void> {
    await forEachLimit(
      Array.from({ length: n }, (_, i) => i),
      concurrency,
      async (i) => {
        const client = mqttClient(target.host, target.port, target.credentials(i));
        this.clients.push(client);
        // A socket error after CONNACK must not crash the process; the deliveries it costs count as lost.
        client.on('error', () => undefined);
        client.on('message', (topic, payload) => {
          if (this.sink) this.sink.arrived(i, topic, payload);
          else this.strays++;
        });
        await connected(client);
        const granted = await client.subscribeAsync(TOPIC, { qos: 0 });
        if (granted[0]?.qos !== 0) throw new Error(`${target.name}: subscription of ${i} refused`);
      },
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map(endClient));
    this.clients.length = 0;
  }
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

let scenarioTag = 0;

type PhaseResult = Omit<
  MqttFanoutMeasurement,
  'connectSeconds' | 'heapBytesPerConnection' | 'rssBytesPerConnection' | 'closeSeconds' | 'setupSettled'
>;

async function sendPhase(
  scenario: MqttScenarioName,
  target: Target,
  subscribers: Subscribers,
  o: MqttFanoutResult['options'],
): Promise<PhaseResult> {
  const publisher = await withDeadline(target.publisher(scenario), o.deadlineMs, `${scenario}: publisher`);
  const tag = ++scenarioTag;
  const sink = new Sink(tag, o.clients, o.messages);
  let errors = subscribers.strays;
  subscribers.strays = 0;
  subscribers.sink = sink;
  const text = 'x'.repeat(o.textLength);
  let next = 0;
  let published = 0;
  let publishErrors = 0;
  let publishError: string | undefined;
  let stalled = false;
  /** Set once the send phase is over (a deadline leaves workers behind: they must not publish on). */
  let stopped = false;
  let started = 0;

  const worker = async () => {
    while (
      !stalled &&
      !stopped &&
      publishErrors === 0 &&
      next < o.messages &&
      performance.now() - started < o.sendBudgetMs
    ) {
      const k = next++;
      const frame: AnnouncementFrame = {
        type: 'announcement',
        id: `bench-${tag}-${k}`,
        ts: Date.now(),
        from: 'backend',
        body: { s: tag, k, t: performance.now(), text },
      };
      try {
        await publisher.publish(frame);
        published++;
      } catch (error) {
        publishErrors++;
        publishError ??= error instanceof Error ? error.message : String(error);
        return;
      }
      await sink.complete(k);
    }
  };

  const stopProfile = o.profileDir ? await startCpuProfile() : undefined;
  const cpu = cpuStopwatch();
  started = performance.now();
  const watchdog = setInterval(() => {
    if (performance.now() - Math.max(started, sink.lastArrival) > o.stallMs) {
      stalled = true;
      sink.release();
    }
  }, 100);
  let timedOut = false;
  try {
    await withDeadline(
      Promise.all(Array.from({ length: Math.min(o.window, o.messages) }, worker)),
      o.sendBudgetMs + o.deadlineMs,
      `${scenario}: publishing ${o.messages} messages to ${o.clients} subscribers`,
    );
  } catch (error) {
    if (!(error instanceof Error && error.name === 'DeadlineError')) throw error;
    timedOut = true;
  } finally {
    clearInterval(watchdog);
    stopped = true;
    sink.release();
  }
  const cpuSeconds = cpu();
  const cpuProfile = stopProfile
    ? await stopProfile(
        join(
          o.profileDir as string,
          `mqtt-fanout-${scenario}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`,
        ),
      )
    : undefined;
  // Late duplicates would arrive right behind the originals.
  await new Promise((resolve) => setTimeout(resolve, 100));
  subscribers.sink = undefined;
  await publisher.close();

  errors += sink.errors;
  const delivered = sink.count;
  const expected = o.clients * published;
  const wallSeconds = ((delivered > 0 ? sink.lastArrival : performance.now()) - started) / 1000;
  return {
    scenario,
    target: target.name,
    clients: o.clients,
    messages: o.messages,
    messagesSent: published,
    truncated: published < o.messages,
    expected,
    delivered,
    lost: Math.max(0, expected - delivered),
    duplicated: sink.duplicated,
    errors,
    publishErrors,
    ...(publishError === undefined ? {} : { publishError }),
    stalled,
    timedOut,
    wallSeconds,
    deliveriesPerSecond: delivered / wallSeconds,
    latencyMs: percentiles(sink.latencies.subarray(0, delivered)),
    cpuSeconds,
    cpuSecondsPerMillionDeliveries: (cpuSeconds / delivered) * 1e6,
    coresBusy: cpuSeconds / wallSeconds,
    ...(cpuProfile ? { cpuProfile } : {}),
  };
}

/** Starts one target, connects its subscribers, runs its scenarios, closes everything. */
async function measureTarget(
  name: MqttTargetName,
  scenarios: readonly MqttScenarioName[],
  o: MqttFanoutResult['options'],
): Promise<MqttFanoutMeasurement[]> {
  const target = await withDeadline(
    name === 'emulator' ? startEmulatorTarget(o.clients) : startAedesTarget(),
    o.deadlineMs,
    `starting ${name}`,
  );
  const subscribers = new Subscribers();
  try {
    const before = memorySample();
    const connectStarted = performance.now();
    await withDeadline(
      subscribers.connect(target, o.clients, o.connectConcurrency),
      o.deadlineMs,
      `${name}: connecting ${o.clients} subscribers`,
    );
    const connectSeconds = seconds(connectStarted);
    // The emulator's `connected` lifecycle events invoke the presence Lambda in the background.
    const setupSettled = await waitForQuietCpu({ timeoutMs: 30_000 });
    const after = memorySample();

    const phases: PhaseResult[] = [];
    for (const scenario of scenarios) phases.push(await sendPhase(scenario, target, subscribers, o));

    const closeStarted = performance.now();
    await withDeadline(subscribers.close(), o.deadlineMs, `${name}: closing subscribers`);
    await withDeadline(target.close(), o.deadlineMs, `${name}: close`);
    const closeSeconds = seconds(closeStarted);
    return phases.map((phase) => ({
      ...phase,
      connectSeconds,
      heapBytesPerConnection: (after.heapUsed - before.heapUsed) / o.clients,
      rssBytesPerConnection: (after.rss - before.rss) / o.clients,
      closeSeconds,
      setupSettled,
    }));
  } catch (error) {
    for (const client of subscribers.clients) client.end(true);
    await target.close().catch(() => undefined);
    throw error;
  }
}

/** Sizes and defaults after `quick` is applied. */
export function resolveMqttFanoutOptions(options: MqttFanoutOptions = {}): MqttFanoutResult['options'] {
  const quick = options.quick ?? false;
  return {
    quick,
    clients: options.clients ?? (quick ? 50 : 1000),
    messages: options.messages ?? (quick ? 50 : 1000),
    window: options.window ?? 16,
    textLength: options.textLength ?? 64,
    connectConcurrency: options.connectConcurrency ?? 32,
    sendBudgetMs: options.sendBudgetMs ?? 60_000,
    stallMs: options.stallMs ?? 10_000,
    deadlineMs: options.deadlineMs ?? 180_000,
    scenarios: options.scenarios ?? MQTT_SCENARIOS,
    ...(options.profileDir ? { profileDir: options.profileDir } : {}),
  };
}

function numericFigures(m: MqttFanoutMeasurement): Record<string, number> {
  return {
    deliveriesPerSecond: m.deliveriesPerSecond,
    wallSeconds: m.wallSeconds,
    latencyP50Ms: m.latencyMs.p50,
    latencyP90Ms: m.latencyMs.p90,
    latencyP99Ms: m.latencyMs.p99,
    latencyMaxMs: m.latencyMs.max,
    cpuSecondsPerMillionDeliveries: m.cpuSecondsPerMillionDeliveries,
    heapBytesPerConnection: m.heapBytesPerConnection,
    rssBytesPerConnection: m.rssBytesPerConnection,
    connectSeconds: m.connectSeconds,
  };
}

/** Runs the selected scenarios (aedes first, then the emulator, each started and closed inside). */
export async function runMqttFanout(options: MqttFanoutOptions = {}): Promise<MqttFanoutResult> {
  const o = resolveMqttFanoutOptions(options);
  const result: MqttFanoutResult = {
    options: o,
    measurements: {},
    ratios: {},
    targets: { noLossNoDuplicates: true },
    notes: [
      `pacing: at most ${o.window} messages in flight, a message leaving the window once all ${o.clients} subscribers have it`,
      'subscriptions are QoS 0, so every delivery is QoS 0 (emulator-data-plane publishes at QoS 1, as the service does)',
      'brokers, publisher and subscribers share the process and its cores: CPU figures cover all of them',
      'memory per connection: heap/RSS growth after a full GC from connecting N idle subscribers, client side included',
      `issue 7 target judged on ${JUDGED_RATIO.emulator} / ${JUDGED_RATIO.baseline} (broker against broker, same publisher kind)`,
    ],
  };
  for (const target of ['aedes', 'emulator'] as const) {
    const scenarios = MQTT_SCENARIOS.filter((s) => SCENARIO_TARGET[s] === target && o.scenarios.includes(s));
    if (scenarios.length === 0) continue;
    for (const m of await measureTarget(target, scenarios, o)) result.measurements[m.scenario] = m;
  }
  const ms = result.measurements;
  for (const e of ['emulator-in-process', 'emulator-data-plane'] as const) {
    for (const b of ['aedes-in-process', 'aedes-mqtt'] as const) {
      const em = ms[e];
      const bm = ms[b];
      if (!em || !bm) continue;
      const base = numericFigures(bm);
      result.ratios[`${e} / ${b}`] = Object.fromEntries(
        Object.entries(numericFigures(em)).map(([k, v]) => [k, ratio(v, base[k] as number)]),
      );
    }
  }
  const judged = result.ratios[`${JUDGED_RATIO.emulator} / ${JUDGED_RATIO.baseline}`]?.deliveriesPerSecond;
  const service = result.ratios[`${SERVICE_PATH_RATIO.emulator} / ${SERVICE_PATH_RATIO.baseline}`]?.deliveriesPerSecond;
  result.targets = {
    ...(judged === undefined ? {} : { brokerRatio: judged, brokerAtLeast60Percent: judged >= 0.6 }),
    ...(service === undefined ? {} : { servicePathRatio: service, servicePathAtLeast60Percent: service >= 0.6 }),
    noLossNoDuplicates: Object.values(ms).every((m) => m.lost === 0 && m.duplicated === 0),
  };
  return result;
}

/** Whether every scenario that ran delivered everything exactly once, with no failed publish or stall. */
export function mqttFanoutCorrect(result: MqttFanoutResult): boolean {
  return Object.values(result.measurements).every(
    (m) =>
      m.lost === 0 &&
      m.duplicated === 0 &&
      m.errors === 0 &&
      m.publishErrors === 0 &&
      !m.stalled &&
      !m.timedOut &&
      m.delivered === m.expected,
  );
}

const COLUMN: Record<MqttScenarioName, string> = {
  'emulator-data-plane': 'emulator, data plane',
  'emulator-in-process': 'emulator, in-process',
  'aedes-in-process': 'aedes, in-process',
  'aedes-mqtt': 'aedes, MQTT publisher',
};

function tableRows(result: MqttFanoutResult): TableRow[] {
  const ms = result.measurements;
  const judgedKey = `${JUDGED_RATIO.emulator} / ${JUDGED_RATIO.baseline}`;
  const serviceKey = `${SERVICE_PATH_RATIO.emulator} / ${SERVICE_PATH_RATIO.baseline}`;
  const row = (figure: string, pick: (m: MqttFanoutMeasurement) => number, ratioKey?: string): TableRow => {
    const cells: TableRow = { figure };
    for (const s of ['emulator-data-plane', 'emulator-in-process', 'aedes-in-process', 'aedes-mqtt'] as const) {
      const m = ms[s];
      cells[COLUMN[s]] = m ? pick(m) : undefined;
    }
    cells['emu in-proc / aedes in-proc'] = ratioKey ? result.ratios[judgedKey]?.[ratioKey] : undefined;
    cells['emu data plane / aedes in-proc'] = ratioKey ? result.ratios[serviceKey]?.[ratioKey] : undefined;
    return cells;
  };
  return [
    row('deliveries / s', (m) => m.deliveriesPerSecond, 'deliveriesPerSecond'),
    row('wall time, first publish to last delivery (s)', (m) => m.wallSeconds, 'wallSeconds'),
    row('latency p50 (ms)', (m) => m.latencyMs.p50, 'latencyP50Ms'),
    row('latency p90 (ms)', (m) => m.latencyMs.p90, 'latencyP90Ms'),
    row('latency p99 (ms)', (m) => m.latencyMs.p99, 'latencyP99Ms'),
    row('latency max (ms)', (m) => m.latencyMs.max, 'latencyMaxMs'),
    row('messages published', (m) => m.messagesSent),
    row('deliveries expected (N x published)', (m) => m.expected),
    row('delivered', (m) => m.delivered),
    row('lost', (m) => m.lost),
    row('duplicated', (m) => m.duplicated),
    row('errors (stray or unparseable payloads)', (m) => m.errors),
    row('failed publishes', (m) => m.publishErrors),
    row(
      'process CPU-s / 1M deliveries (all in one process)',
      (m) => m.cpuSecondsPerMillionDeliveries,
      'cpuSecondsPerMillionDeliveries',
    ),
    row('cores busy during the send phase', (m) => m.coresBusy),
    row('heap KB / connection (broker + client)', (m) => m.heapBytesPerConnection / 1024, 'heapBytesPerConnection'),
    row('RSS KB / connection (broker + client)', (m) => m.rssBytesPerConnection / 1024, 'rssBytesPerConnection'),
    row('connect + subscribe N clients (s)', (m) => m.connectSeconds, 'connectSeconds'),
    row('close N clients and the broker (s)', (m) => m.closeSeconds),
  ];
}

function parseScenarios(list: string): MqttScenarioName[] {
  const names = list.split(',').filter(Boolean);
  const bad = names.find((n) => !(MQTT_SCENARIOS as readonly string[]).includes(n));
  if (bad !== undefined || names.length === 0)
    throw new TypeError(`--scenarios lists some of ${MQTT_SCENARIOS.join(', ')}; got "${list}"`);
  return names as MqttScenarioName[];
}

/** CLI entry: runs with `args`, prints the table, writes the JSON result; resolves whether it was correct. */
export async function main(args: BenchArgs = parseBenchArgs()): Promise<boolean> {
  const result = await runMqttFanout({
    quick: args.quick,
    ...(args.flags.clients !== undefined ? { clients: intFlag(args, 'clients', 1000) } : {}),
    ...(args.flags.messages !== undefined ? { messages: intFlag(args, 'messages', 1000) } : {}),
    ...(args.flags.window !== undefined ? { window: intFlag(args, 'window', 16) } : {}),
    ...(typeof args.flags.scenarios === 'string' ? { scenarios: parseScenarios(args.flags.scenarios) } : {}),
    ...(args.flags['budget-ms'] !== undefined ? { sendBudgetMs: intFlag(args, 'budget-ms', 60_000) } : {}),
    ...(args.flags['deadline-ms'] !== undefined ? { deadlineMs: intFlag(args, 'deadline-ms', 180_000) } : {}),
    ...(args.flags.profile !== undefined ? { profileDir: RESULTS_DIR } : {}),
  });
  const { clients, messages, window } = result.options;
  printTable(tableRows(result), {
    title: `mqtt-fanout: ${clients} QoS 0 subscribers of one topic, ${messages} messages, window ${window}${args.quick ? ' (quick)' : ''}`,
  });
  for (const note of result.notes) console.log(`  note: ${note}`);
  for (const m of Object.values(result.measurements)) {
    if (m.truncated)
      console.log(
        `  note: ${m.scenario} published ${m.messagesSent} of ${m.messages} messages (budget, stall or failure)`,
      );
    if (m.publishError) console.log(`  ${m.scenario}: first failed publish: ${m.publishError}`);
    if (m.stalled) console.log(`  ${m.scenario}: stalled (no delivery for ${result.options.stallMs} ms)`);
    if (m.cpuProfile) console.log(`  ${m.scenario} send-phase CPU profile: ${m.cpuProfile}`);
    if (!m.setupSettled)
      console.log(`  note: ${m.target}: setup work was still running 30 s after connecting; figures may suffer`);
  }
  const t = result.targets;
  const mark = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');
  console.log(
    `  issue 7 target, emulator >= 60% of a bare broker (${JUDGED_RATIO.emulator} / ${JUDGED_RATIO.baseline}): ` +
      `${mark(t.brokerAtLeast60Percent)}${t.brokerRatio === undefined ? '' : ` (${formatNumber(t.brokerRatio)})`}; ` +
      `service path (${SERVICE_PATH_RATIO.emulator} / ${SERVICE_PATH_RATIO.baseline}): ` +
      `${t.servicePathRatio === undefined ? 'not measured' : `${formatNumber(t.servicePathRatio)}, reported, not judged`}; ` +
      `0 lost, 0 duplicated ${mark(t.noLossNoDuplicates)}`,
  );
  if (args.write) console.log(`  result: ${writeResult('mqtt-fanout', { ...result })}`);
  const correct = mqttFanoutCorrect(result);
  if (!correct) console.error('mqtt-fanout: lost, duplicated or failed deliveries (see the table)');
  return correct;
}

runAsScript(import.meta.url, () => main());
