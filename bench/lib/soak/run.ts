/**
 * The soak (issue 8, "load and soak"): N clients on both channels in rooms of mixed sizes chat, join and leave,
 * and get backend notifications for a while; reconnect storms drop everyone at once; then everything is
 * checked (`verify.ts`) and the emulator's memory and handles are compared with their warm baseline.
 *
 * Phases:
 * 1. **warm-up**: the emulator starts in its own process (`emulator-process.ts`); a few clients of each channel
 *    connect, join, chat, get a notification and leave, so every handler, SDK client and code path is loaded.
 *    Once its keep-alive sockets are gone and its handles are steady, a sample after a full GC is the
 *    **baseline**.
 * 2. **ramp**: the N clients connect (`rampConcurrency` handshakes at a time) and join their home rooms.
 * 3. **traffic** for `durationMs`: chat, churn and notifications as Poisson processes at their rates, each on a
 *    client that is connected and not busy; heartbeats for idle clients; storms evenly spaced, each awaited
 *    until every client is connected, rejoined and caught up again.
 * 4. **quiesce**: no new work; every operation in flight ends; every client pings (its answer comes after
 *    everything written to its connection before) and reads its whole inbox.
 * 5. **verify** against what was acknowledged, received and stored.
 * 6. **close** every client; wait for the emulator to settle and its handles to return to the baseline; a
 *    sample after a full GC is the **end**.
 *
 * The parts: `emulator-process.ts` (the emulator in its own process), `plan.ts` (who is where), `links.ts` and
 * `client.ts` (raw clients that reconnect, rejoin and catch up as the SDK does), `records.ts` and `verify.ts`
 * (what was sent and received, and the verdict), `resources.ts` (handles against the baseline), `checks.ts`,
 * `report.ts` (the tables). The CLI is `bench/soak.ts`; the quick form is test/reliability/load.test.ts.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDynamoDbStore, type DynamoDbStore, type StoredMessage } from '@viba-realtime/lambdas';
import { createPublisher, type Publisher } from '@viba-realtime/publisher';
import { forEachLimit, withDeadline } from '../process.js';
import { soakChecks } from './checks.js';
import { ErrorFrameError, newCounters, SoakClient, type SoakCounters } from './client.js';
import { EmulatorProcess, type EmulatorSample } from './emulator-process.js';
import { CHANNELS, type Channel, ConnectRefusedError, soakMqttClientId } from './links.js';
import { LogCollector, type LogSummary } from './logs.js';
import { type ResolvedSoakOptions, resolveSoakOptions, type SoakOptions, type StormMode } from './options.js';
import { type PlanSummary, planSoak, summarizePlan } from './plan.js';
import { Random } from './random.js';
import type { SentMessage, SentNotification } from './records.js';
import { extraResources, steadyResources } from './resources.js';
import {
  type ChatVerdict,
  describeMembership,
  type NotificationVerdict,
  type TableVerdict,
  verifyChat,
  verifyNotifications,
  verifyTable,
} from './verify.js';

/** One reconnect storm. */
export interface StormResult {
  mode: StormMode;
  /** When it started, seconds into the traffic phase. */
  atSeconds: number;
  /** Connections the emulator closed (`server`) or the clients cut (`client`). */
  dropped: { websocket: number; mqtt: number };
  /** Until every client had a new connection open, ms. */
  allReconnectedMs: number;
  /** Until every client was connected, rejoined and caught up again (its unacknowledged send resent), ms. */
  allRecoveredMs: number;
  /** Per-client time to recover, ms. */
  recoveryMs: { p50: number; p90: number; p99: number; max: number };
  /** Clients not recovered when the phase deadline passed (must be 0). */
  notRecovered: number;
  connectAttempts: number;
  /** Failed connection attempts during the storm, by reason. */
  refusals: Record<string, number>;
  /** Error frames answering requests during the storm, by `action:code`. */
  errorFrames: Record<string, number>;
  requestTimeouts: number;
  /** Messages read from history while catching up. */
  catchUpMessages: number;
  /** Sends whose ack the storm cut off, resent after the reconnect. */
  resentMessages: number;
  /** The emulator during the storm: highest event-loop delay p99 and RSS of the periodic samples. */
  emulatorLoopDelayP99Ms: number;
  emulatorPeakRss: number;
}

/** A periodic sample, as reported. */
export interface SeriesPoint {
  /** Seconds since the run started. */
  t: number;
  phase: string;
  heapUsed: number;
  rss: number;
  /** CPU used by the emulator since the previous point, as a share of one core. */
  cpu: number;
  loopDelayP99Ms: number;
  connections: number;
  /** Active resources (handles and requests) of the emulator. */
  resources: number;
}

/** A memory reading after a full GC. */
export interface MemoryPoint {
  heapUsed: number;
  rss: number;
  external: number;
  resources: Record<string, number>;
}

export interface SoakResult {
  options: Omit<ResolvedSoakOptions, 'progress' | 'cpuProfileDir' | 'heapSnapshotDir'>;
  plan: PlanSummary;
  phasesMs: Record<string, number>;
  traffic: {
    chatSends: number;
    churnJoins: number;
    churnLeaves: number;
    notifyCalls: number;
    notifyRetries: number;
    heartbeats: number;
    /** Ticks that found no idle connected client. */
    skipped: Record<string, number>;
    /** Operations that failed other than by a drop, by operation and error. */
    operationErrors: Record<string, number>;
    notifyErrors: number;
    /** Retried `notify` calls that did not answer `duplicate` with the first call's ids. */
    notifyRetryMismatches: number;
  };
  ramp: { connectMs: number; joinMs: number; refusals: Record<string, number> };
  storms: StormResult[];
  chat: ChatVerdict;
  notifications: NotificationVerdict;
  table: TableVerdict;
  /** Open memberships whose subscription was in the table at the end (on the client's current connection). */
  subscriptions: { checked: number; missing: number; examples: string[] };
  counters: SoakCounters;
  memory: {
    baseline: MemoryPoint;
    afterRamp: MemoryPoint;
    /** After the traffic, clients still connected. */
    endConnected: MemoryPoint;
    /** After every client closed and the emulator settled. */
    end: MemoryPoint;
    peak: { heapUsed: number; rss: number };
    /** end - baseline, after a full GC. */
    heapGrowth: number;
    rssGrowth: number;
    /** The traffic phase's heap after full GCs (seconds into the run, bytes). */
    gcSeries: { t: number; heapUsed: number }[];
    /** Active resource types above the baseline at the end (must be empty). */
    extraResources: Record<string, number>;
    /** How long after the clients closed the resources took to return to the baseline, ms. */
    resourcesSettledMs: number;
    /** The load generator (this process): heap and RSS at the end of the traffic. */
    loadGenerator: { heapUsed: number; rss: number };
    series: SeriesPoint[];
  };
  emulatorCpuSeconds: number;
  logs: LogSummary;
  /** Each correctness check, true when it holds. */
  checks: Record<string, boolean>;
}

const WARMUP_CLIENTS = 6;
const TOKEN_TTL_MARGIN_S = 30 * 60;
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function memoryPoint(sample: EmulatorSample): MemoryPoint {
  return { heapUsed: sample.heapUsed, rss: sample.rss, external: sample.external, resources: sample.resources };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function add(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const d = value - (before[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

/** A Poisson process of ticks until stopped. */
class Ticker {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  constructor(
    private readonly perSecond: number,
    private readonly random: Random,
    private readonly tick: () => void,
  ) {}
  start(): void {
    if (this.perSecond <= 0) return;
    const schedule = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => {
        this.tick();
        schedule();
      }, this.random.interval(this.perSecond));
    };
    schedule();
  }
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

/**
 * Runs the soak and returns its figures and verdict; never throws for a failed check (see `checks`), only for
 * a run that could not happen (the emulator did not start, a phase hung past its deadline).
 * @example
 * const result = await runSoak({ connections: 500, durationMs: 20_000, storms: 1 });
 * console.log(result.checks);
 */
export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const o = resolveSoakOptions(options);
  const progress = o.progress ?? (() => {});
  const runStarted = performance.now();
  const now = () => performance.now();
  const seconds = () => (now() - runStarted) / 1000;
  const logs = new LogCollector();
  // Diagnostics: every line of the emulator child into this file.
  const logFile = process.env.VIBA_SOAK_LOG_FILE;
  const random = new Random(o.seed ^ 0x5eed);
  const plan = planSoak(o);
  const phasesMs: Record<string, number> = {};
  const phase = async <T>(name: string, run: () => Promise<T>, deadlineMs = o.phaseDeadlineMs): Promise<T> => {
    const started = now();
    progress(`${name}...`);
    try {
      return await withDeadline(run(), deadlineMs, `soak phase ${name}`);
    } finally {
      phasesMs[name] = Math.round(now() - started);
      progress(`${name}: ${(phasesMs[name] / 1000).toFixed(1)} s`);
    }
  };

  const emulator = await EmulatorProcess.start({
    store: o.store,
    onLine: (line, stream) => {
      logs.add(line, stream);
      if (logFile !== undefined) appendFileSync(logFile, `${line}\n`);
    },
    ...(o.cpuProfileDir ? { cpuProfileDir: o.cpuProfileDir } : {}),
  });
  const { endpoints } = emulator;
  const store: DynamoDbStore = createDynamoDbStore({
    tableName: endpoints.tableName,
    region: 'us-east-1',
    endpoint: endpoints.dynamodbEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const publisher: Publisher = createPublisher({
    tableName: endpoints.tableName,
    connectionsEndpoint: endpoints.connectionsEndpoint,
    iotEndpoint: endpoints.iotDataEndpoint,
    ...(endpoints.fanoutQueueUrl
      ? { fanoutQueueUrl: endpoints.fanoutQueueUrl, sqsEndpoint: endpoints.sqsEndpoint }
      : {}),
    dynamodbEndpoint: endpoints.dynamodbEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    // The publisher's warnings would interleave with the table; its failures are counted as notify errors.
    logLevel: 'silent',
  });

  const counters = newCounters();
  const messages: SentMessage[] = [];
  const notifications: SentNotification[] = [];
  const traffic: SoakResult['traffic'] = {
    chatSends: 0,
    churnJoins: 0,
    churnLeaves: 0,
    notifyCalls: 0,
    notifyRetries: 0,
    heartbeats: 0,
    skipped: {},
    operationErrors: {},
    notifyErrors: 0,
    notifyRetryMismatches: 0,
  };
  let storm: { recovered: Set<number>; generations: number[]; done: () => void } | undefined;
  const series: SeriesPoint[] = [];
  const gcSeries: { t: number; heapUsed: number }[] = [];
  let currentPhase = 'warm-up';
  let lastCpu: { at: number; cpuMs: number } | undefined;
  let peak = { heapUsed: 0, rss: 0 };

  /** Periodic samples go into the series; the others (GC'd, or polling for steady handles) only into the peak. */
  const record = (sample: EmulatorSample, periodic = false) => {
    peak = { heapUsed: Math.max(peak.heapUsed, sample.heapUsed), rss: Math.max(peak.rss, sample.rss) };
    if (!periodic) return;
    const cpu = lastCpu ? (sample.cpuMs - lastCpu.cpuMs) / Math.max(1, sample.at - lastCpu.at) : 0;
    lastCpu = { at: sample.at, cpuMs: sample.cpuMs };
    series.push({
      t: Math.round(seconds() * 10) / 10,
      phase: currentPhase,
      heapUsed: sample.heapUsed,
      rss: sample.rss,
      cpu: Math.round(cpu * 100) / 100,
      loopDelayP99Ms: Math.round(sample.loopDelayMs.p99),
      connections: sample.connections.websocket + sample.connections.mqtt,
      resources: Object.values(sample.resources).reduce((a, b) => a + b, 0),
    });
  };
  const sample = async (gc: boolean) => {
    const s = await emulator.sample({ gc });
    record(s);
    return s;
  };
  const sampler = setInterval(() => {
    emulator
      .sample({ gc: false })
      .then((s) => record(s, true))
      .catch(() => undefined);
  }, o.sampleEveryMs);

  const clients: SoakClient[] = [];
  const stops: (() => void)[] = [];
  const inFlight = new Set<Promise<void>>();
  const track = (name: string, work: Promise<void>) => {
    const running = work.catch((error: unknown) => {
      add(traffic.operationErrors, `${name}: ${error instanceof ErrorFrameError ? error.code : String(error)}`);
    });
    inFlight.add(running);
    void running.finally(() => inFlight.delete(running));
  };
  const context = {
    endpoints,
    counters,
    now,
    random: random.fork(),
    inStorm: () => storm !== undefined,
    onAcked: (message: SentMessage) => messages.push(message),
    onRecovered: (client: SoakClient) => {
      if (!storm || (storm.generations[client.index] ?? 0) >= client.generation) return;
      storm.recovered.add(client.index);
      if (storm.recovered.size === clients.length) storm.done();
    },
  };

  /** Connects with retries (the ramp is not a storm: a refusal is counted and the client tries again). */
  const connectWithRetry = async (client: SoakClient, refusals: Record<string, number>) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.connect();
        return;
      } catch (error) {
        if (!(error instanceof ConnectRefusedError) || attempt >= 10) throw error;
        add(refusals, `${client.channel} ${error.reason}`);
        await delay(random.next() * Math.min(5_000, 200 * 2 ** attempt));
      }
    }
  };

  let baseline: EmulatorSample | undefined;
  try {
    // 1. Warm-up and baseline.
    await phase('warm-up', async () => {
      const subs = Array.from({ length: WARMUP_CLIENTS }, (_, i) => `soak${o.seed}-w${i}`);
      const tokens = await emulator.mint(subs, 600);
      const warm = subs.map(
        (sub, i) =>
          new SoakClient(
            -1 - i,
            sub,
            CHANNELS[i % CHANNELS.length] as Channel,
            i % 2 === 0 ? 5 : 4,
            tokens[i] as string,
            {
              ...context,
              onAcked: () => {},
              onRecovered: () => {},
            },
          ),
      );
      await Promise.all(warm.map((c) => connectWithRetry(c, {})));
      for (const c of warm) await c.join('soak-warm-up', false);
      for (const c of warm) await c.send('soak-warm-up');
      await publisher.notify(subs, { text: 'warm-up' });
      for (const c of warm) await c.readInbox();
      for (const c of warm) await c.leave('soak-warm-up');
      await Promise.all(warm.map((c) => c.close()));
      await emulator.settle();
      baseline = await steadyResources(emulator, record, undefined);
      baseline = await sample(true);
      if (o.heapSnapshotDir)
        progress(
          `  heap snapshot: ${await emulator.heapSnapshot(join(o.heapSnapshotDir, 'soak-baseline.heapsnapshot'))}`,
        );
    });
    if (!baseline) throw new Error('no baseline sample');
    const base = baseline;

    // 2. Ramp.
    currentPhase = 'ramp';
    const rampRefusals: Record<string, number> = {};
    const tokens = await emulator.mint(
      plan.clients.map((c) => c.sub),
      Math.ceil(o.durationMs / 1000) + TOKEN_TTL_MARGIN_S,
    );
    for (const c of plan.clients) {
      clients.push(new SoakClient(c.index, c.sub, c.channel, c.protocolVersion, tokens[c.index] as string, context));
    }
    let connectMs = 0;
    let joinMs = 0;
    await phase('ramp', async () => {
      const started = now();
      await forEachLimit(clients, o.rampConcurrency, (client) => connectWithRetry(client, rampRefusals));
      connectMs = Math.round(now() - started);
      progress(`  ${clients.length} connected in ${(connectMs / 1000).toFixed(1)} s`);
      const joining = now();
      await forEachLimit(clients, o.rampConcurrency, async (client) => {
        for (const room of plan.clients[client.index]?.homeRooms ?? []) await client.join(room, false);
      });
      joinMs = Math.round(now() - joining);
    });
    const afterRamp = await sample(true);

    // 3. Traffic, with storms.
    currentPhase = 'traffic';
    const activity = random.fork();
    const pick = (name: string, accept: (c: SoakClient) => boolean): SoakClient | undefined => {
      for (let tries = 0; tries < 16; tries++) {
        const client = clients[activity.int(clients.length)];
        if (client && client.state === 'ready' && !client.busy && accept(client)) return client;
      }
      add(traffic.skipped, name);
      return undefined;
    };
    let notifySeq = 0;
    const tickers = [
      new Ticker(o.chatPerSecond, activity.fork(), () => {
        const client = pick('chat', (c) => c.joinedRooms().length > 0);
        if (!client) return;
        const room = activity.pick(client.joinedRooms()).room;
        traffic.chatSends++;
        track('send', client.send(room));
      }),
      new Ticker(o.churnPerSecond, activity.fork(), () => {
        const client = pick('churn', () => true);
        if (!client) return;
        const churned = [...client.rooms.values()].find((m) => m.churn && m.startSeq !== undefined);
        if (churned) {
          traffic.churnLeaves++;
          track('leave', client.leave(churned.room));
          return;
        }
        const room = activity.pick(plan.churnRooms);
        if (client.rooms.has(room)) return;
        traffic.churnJoins++;
        track('join', client.join(room, true));
      }),
      new Ticker(o.notifyPerSecond, activity.fork(), () => {
        const count = 1 + activity.int(8);
        const users = [...new Set(Array.from({ length: count }, () => activity.int(clients.length)))];
        const key = `soak-n${++notifySeq}`;
        const retry = activity.next() < o.notifyRetryShare;
        traffic.notifyCalls++;
        track('notify', notifyOnce(users, key, retry));
      }),
    ];
    const subIndex = new Map(plan.clients.map((c) => [c.sub, c.index]));
    const notifyOnce = async (users: number[], key: string, retry: boolean) => {
      const subs = users.map((u) => plan.clients[u]?.sub as string);
      const body = { text: `soak notification ${key}` };
      const startedAt = now();
      let outcomes: Awaited<ReturnType<Publisher['notify']>>;
      try {
        outcomes = await publisher.notify(subs, body, { key });
      } catch (error) {
        traffic.notifyErrors++;
        throw error;
      }
      const endedAt = now();
      for (const outcome of outcomes) {
        const user = subIndex.get(outcome.userId);
        if (user === undefined || outcome.duplicate) {
          traffic.notifyRetryMismatches++;
          continue;
        }
        notifications.push({ id: outcome.id, user, key, startedAt, endedAt, delivered: outcome.delivery.delivered });
      }
      if (!retry) return;
      traffic.notifyRetries++;
      const again = await publisher.notify(subs, body, { key });
      const first = new Map(outcomes.map((x) => [x.userId, x.id]));
      for (const outcome of again)
        if (!outcome.duplicate || first.get(outcome.userId) !== outcome.id) traffic.notifyRetryMismatches++;
    };
    const heartbeat = setInterval(() => {
      const due = now() - o.heartbeatMs;
      for (const client of clients) {
        if (client.state === 'ready' && !client.busy && client.lastRequestAt < due) {
          traffic.heartbeats++;
          track('ping', client.ping());
        }
      }
    }, 5_000);
    let gcTimer: NodeJS.Timeout | undefined;
    if (o.gcSampleEveryMs > 0) {
      gcTimer = setInterval(() => {
        sample(true)
          .then((s) => gcSeries.push({ t: Math.round(seconds()), heapUsed: s.heapUsed }))
          .catch(() => undefined);
      }, o.gcSampleEveryMs);
    }
    const stopTraffic = () => {
      for (const ticker of tickers) ticker.stop();
      clearInterval(heartbeat);
      clearInterval(gcTimer);
    };
    stops.push(stopTraffic);
    const storms: StormResult[] = [];
    async function runStorm(mode: StormMode, atSeconds: number): Promise<StormResult> {
      const before = structuredClone(counters);
      const resentBefore = messages.filter((m) => m.attempts > 1).length;
      let done!: () => void;
      const allRecovered = new Promise<void>((resolve) => {
        done = resolve;
      });
      storm = { recovered: new Set(), generations: clients.map((c) => c.generation), done };
      const generations = storm.generations;
      const started = now();
      const seriesFrom = series.length;
      let dropped: { websocket: number; mqtt: number };
      if (mode === 'server') {
        dropped = await emulator.drop();
      } else {
        dropped = { websocket: 0, mqtt: 0 };
        for (const client of clients) {
          if (client.state !== 'ready' && client.state !== 'recovering') continue;
          if (client.channel === 'websocket') dropped.websocket++;
          else dropped.mqtt++;
          client.cut();
        }
      }
      const deadline = o.phaseDeadlineMs;
      const recovered = await withDeadline(allRecovered, deadline, 'storm recovery').then(
        () => true,
        () => false,
      );
      storm = undefined;
      const times = clients
        .map((c) => (c.recoveredAt > started ? c.recoveredAt - started : Number.NaN))
        .filter(Number.isFinite)
        .sort((a, b) => a - b);
      const reconnected = clients.map((c) => {
        const span = c.spans.find((s, g) => g > (generations[c.index] ?? -1) && s.openedAt >= started);
        return span ? span.openedAt - started : Number.POSITIVE_INFINITY;
      });
      const window = series.slice(seriesFrom);
      return {
        mode,
        atSeconds: Math.round(atSeconds),
        dropped,
        allReconnectedMs: Math.round(Math.max(...reconnected)),
        allRecoveredMs: Math.round(times[times.length - 1] ?? Number.NaN),
        recoveryMs: {
          p50: Math.round(percentile(times, 50)),
          p90: Math.round(percentile(times, 90)),
          p99: Math.round(percentile(times, 99)),
          max: Math.round(times[times.length - 1] ?? Number.NaN),
        },
        notRecovered: recovered ? 0 : clients.length - times.length,
        connectAttempts: counters.connectAttempts - before.connectAttempts,
        refusals: diff(counters.refusals, before.refusals),
        errorFrames: diff(counters.errorFrames, before.errorFrames),
        requestTimeouts: counters.requestTimeouts - before.requestTimeouts,
        catchUpMessages: counters.catchUpMessages - before.catchUpMessages,
        resentMessages: messages.filter((m) => m.attempts > 1).length - resentBefore,
        emulatorLoopDelayP99Ms: Math.max(0, ...window.map((p) => p.loopDelayP99Ms)),
        emulatorPeakRss: Math.max(0, ...window.map((p) => p.rss)),
      };
    }

    const trafficStarted = now();
    await phase(
      'traffic',
      async () => {
        for (const ticker of tickers) ticker.start();
        // `durationMs` is steady traffic: time spent absorbing storms comes on top, so every storm is followed by
        // its share of steady traffic however long it took.
        let stormsMs = 0;
        for (let k = 0; k < o.storms; k++) {
          const at = trafficStarted + stormsMs + (o.durationMs * (k + 1)) / (o.storms + 1);
          if (at > now()) await delay(at - now());
          const stormStarted = now();
          const mode = o.stormModes[k % o.stormModes.length] as StormMode;
          progress(`  storm ${k + 1} (${mode})...`);
          const result = await runStorm(mode, (at - trafficStarted) / 1000);
          storms.push(result);
          stormsMs += now() - stormStarted;
          progress(
            `  storm ${k + 1}: ${result.dropped.websocket + result.dropped.mqtt} dropped, all reconnected in ${(result.allReconnectedMs / 1000).toFixed(1)} s, recovered in ${(result.allRecoveredMs / 1000).toFixed(1)} s`,
          );
        }
        const end = Math.max(
          trafficStarted + stormsMs + o.durationMs,
          now() + (o.storms > 0 ? o.trafficAfterStormMs : 0),
        );
        if (end > now()) await delay(end - now());
        stopTraffic();
        // Each storm has its own deadline; the phase's covers them all.
      },
      o.durationMs + o.trafficAfterStormMs + (o.storms + 1) * o.phaseDeadlineMs,
    );

    // 4. Quiesce.
    currentPhase = 'quiesce';
    await phase('quiesce', async () => {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      // A client still recovering (from a drop outside a storm) finishes first.
      await Promise.all(clients.map((c) => c.whenRecovered()));
      await forEachLimit(clients, 128, (client) => client.ping());
      await forEachLimit(clients, 64, (client) => client.readInbox());
    });
    const endConnected = await sample(true);
    const loadGenerator = { heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss };

    // 5. Verify.
    currentPhase = 'verify';
    const verdicts = await phase('verify', async () => {
      const stored = new Map<string, StoredMessage[]>();
      const rooms = new Set([...plan.rooms.map((r) => r.name), ...messages.map((m) => m.room)]);
      await forEachLimit([...rooms], 8, async (room) => {
        const list: StoredMessage[] = [];
        let after = 0;
        for (;;) {
          const page = await store.listMessages(room, { after, limit: 100 });
          list.push(...page.messages);
          const next = page.next && 'after' in page.next ? page.next.after : undefined;
          if (next === undefined || page.messages.length === 0) break;
          after = next;
        }
        if (list.length > 0) stored.set(room, list);
      });
      // Every room a client counts on must hold its subscription, on the connection it has now: a lost one loses
      // every later message without a trace on the client's side.
      const websocketIds = new Map<string, string[]>();
      for (const [connectionId, user] of await emulator.websocketConnections())
        websocketIds.set(user, [...(websocketIds.get(user) ?? []), connectionId]);
      const audit: SoakResult['subscriptions'] = { checked: 0, missing: 0, examples: [] };
      await forEachLimit(clients, 16, async (client) => {
        const ids =
          client.channel === 'websocket'
            ? (websocketIds.get(client.sub) ?? [])
            : [`mqtt:${soakMqttClientId(client.sub)}`];
        for (const membership of client.rooms.values()) {
          audit.checked++;
          let found = false;
          for (const id of ids) found ||= await store.isSubscribed(membership.room, id);
          if (found) continue;
          audit.missing++;
          if (audit.examples.length < 20)
            audit.examples.push(`no subscription: ${describeMembership(client, membership, runStarted)}`);
        }
      });
      return {
        chat: verifyChat(clients, messages, runStarted),
        notifications: verifyNotifications(clients, notifications),
        table: verifyTable(stored, messages),
        subscriptions: audit,
      };
    });

    // 6. Close, settle, compare with the baseline.
    currentPhase = 'close';
    let resourcesSettledMs = 0;
    let end: EmulatorSample | undefined;
    await phase('close', async () => {
      await forEachLimit(clients, 256, (client) => client.close());
      const closed = now();
      await emulator.settle();
      await steadyResources(emulator, record, base.resources);
      resourcesSettledMs = Math.round(now() - closed);
      end = await sample(true);
      if (o.heapSnapshotDir)
        progress(`  heap snapshot: ${await emulator.heapSnapshot(join(o.heapSnapshotDir, 'soak-end.heapsnapshot'))}`);
    });
    if (!end) throw new Error('no end sample');
    clearInterval(sampler);
    const extra = extraResources(end.resources, base.resources);
    const { progress: _progress, cpuProfileDir: _profile, heapSnapshotDir: _snapshots, ...plainOptions } = o;
    const result: SoakResult = {
      options: plainOptions,
      plan: summarizePlan(plan),
      phasesMs: { ...phasesMs, total: Math.round(now() - runStarted) },
      traffic,
      ramp: { connectMs, joinMs, refusals: rampRefusals },
      storms,
      ...verdicts,
      counters,
      memory: {
        baseline: memoryPoint(base),
        afterRamp: memoryPoint(afterRamp),
        endConnected: memoryPoint(endConnected),
        end: memoryPoint(end),
        peak,
        heapGrowth: end.heapUsed - base.heapUsed,
        rssGrowth: end.rss - base.rss,
        gcSeries,
        extraResources: extra,
        resourcesSettledMs,
        loadGenerator,
        series,
      },
      emulatorCpuSeconds: Math.round(end.cpuMs / 100) / 10,
      logs: logs.summary(),
      checks: {},
    };
    result.checks = soakChecks(result);
    return result;
  } finally {
    clearInterval(sampler);
    // A phase that failed its deadline leaves its timers running: nothing may call the closed emulator.
    for (const stop of stops) stop();
    publisher.close();
    store.destroy();
    await Promise.allSettled(clients.map((c) => (c.state === 'closed' ? undefined : c.close())));
    await emulator.close();
  }
}
