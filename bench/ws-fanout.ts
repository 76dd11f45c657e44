/**
 * Fan-out benchmark, WebSocket channel (issue 7, item 1): N `ws` clients in one room receive M messages
 * from one sender, through
 * - the emulator: the real routes Lambda (store, seq, de-duplication) and one real `@connections`
 *   PostToConnection SDK call per recipient, answered by the emulated API Gateway; and
 * - a raw `ws` broadcast server (`for (const client of room) client.send(data)`), measured in the same run
 *   with the same client code, as the baseline.
 *
 * Method (identical for both targets):
 * - the sender connects and joins first, then N receivers connect (64 handshakes at a time) and join
 *   (32 at a time), each waiting for its join ack. Memory per connection is the heap / RSS growth (after a
 *   full GC) from connecting the N idle receivers, divided by N; it includes the client side of each
 *   connection, which lives in the same process.
 * - Pacing: a window of at most `window` (default 16) unacknowledged sends. The emulator acknowledges a
 *   send when its Lambda returns, i.e. after its whole fan-out was posted; the baseline acknowledges after
 *   queuing its broadcast loop. Each send has a unique client id (`m<k>`) and a body carrying
 *   `performance.now()` at send time; one process, so the clocks agree.
 * - Every receiver marks each id it gets (a second arrival of an id at one client is a duplicate) and
 *   records the latency now - body.t. Wall time runs from the first send to the last first-time delivery.
 * - CPU is this process's user + system time over that interval: server AND load generator (N receiving
 *   clients), which share the process and the cores. Both targets pay the same client cost, so the ratio is
 *   the meaningful figure; the absolute numbers overstate the server's own cost.
 * - Receivers share one user id (the sender has another): every distinct user's join announces presence to
 *   the whole room, which would turn setup into N²/2 posts. The send path does not depend on it.
 *
 * Run: `npm run bench -- --only ws-fanout [--quick] [--clients N] [--messages M] [--window W]
 * [--targets emulator,baseline] [--budget-ms MS] [--deadline-ms MS] [--profile]`, or
 * `npx tsx bench/ws-fanout.ts ...`.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startEmulator } from '@viba-realtime/local';
import WebSocket, { WebSocketServer } from 'ws';
import {
  type BenchArgs,
  cpuStopwatch,
  forEachLimit,
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
  withDeadline,
  writeResult,
} from './lib/index.js';

export type FanoutTargetName = 'emulator' | 'baseline';

/** Options of {@link runWsFanout}. */
export interface WsFanoutOptions {
  /** Short sizes (50 clients, 20 messages) for a smoke run. Explicit sizes below win. @default false */
  quick?: boolean;
  /** Receiving clients N, all in one room (the sender is one more connection). @default 1000 (quick 50) */
  clients?: number;
  /** Messages M sent by the sender. @default 1000 (quick 20) */
  messages?: number;
  /** Unacknowledged sends allowed in flight. @default 16 */
  window?: number;
  /** Characters of filler text in each message body (besides the timestamp). @default 64 */
  textLength?: number;
  /**
   * Time budget of the send phase per target, in ms: no new message is sent after it, the ones in flight
   * are finished and counted, and the figures cover the messages actually sent (`messagesSent`). Keeps a
   * slow target from turning the run into many minutes. @default 60000
   */
  sendBudgetMs?: number;
  /** Deadline of each wait (setup, sending + delivery, close) per target, in ms; a guard, not a budget.
   * @default 120000 */
  deadlineMs?: number;
  /** When set, the send phase of each target is CPU-profiled into this directory. */
  profileDir?: string;
  /** Which targets to run, in this order. @default ['baseline', 'emulator'] */
  targets?: readonly FanoutTargetName[];
}

/** What one target measured. Latencies in ms, memory in bytes. */
export interface FanoutMeasurement {
  target: FanoutTargetName;
  clients: number;
  messages: number;
  /** Messages actually sent: `messages`, unless the send budget ran out first. */
  messagesSent: number;
  /** True when the send budget stopped sending before `messages`. */
  truncated: boolean;
  /** clients × messagesSent. */
  expected: number;
  /** Distinct (client, message) pairs received. */
  delivered: number;
  /** expected - delivered. */
  lost: number;
  /** Arrivals of an id a client already had. */
  duplicated: number;
  /** Error frames, unknown ids, or frames without a client id that nobody waited for. */
  errors: number;
  /** True when sending + delivery hit the deadline (the figures then cover what arrived). */
  timedOut: boolean;
  connectSeconds: number;
  joinSeconds: number;
  /** First send to last first-time delivery. */
  wallSeconds: number;
  deliveriesPerSecond: number;
  latencyMs: Percentiles;
  /** Process CPU (user + system) over the wall interval: server and load generator together. */
  cpuSeconds: number;
  cpuSecondsPerMillionDeliveries: number;
  /** cpuSeconds / wallSeconds: cores kept busy on average. */
  coresBusy: number;
  heapBytesPerConnection: number;
  rssBytesPerConnection: number;
  closeSeconds: number;
  /** Path of the send phase's CPU profile, when `profileDir` was given. */
  cpuProfile?: string;
}

/** Result of {@link runWsFanout}. */
export interface WsFanoutResult {
  options: Required<Omit<WsFanoutOptions, 'quick' | 'profileDir'>> & { quick: boolean; profileDir?: string };
  emulator?: FanoutMeasurement;
  baseline?: FanoutMeasurement;
  /** emulator / baseline for each numeric figure (only when both ran). */
  ratios?: Record<string, number>;
  /** The targets for the emulator (only when both ran). */
  targets?: { deliveriesRatioAtLeast25Percent: boolean; p99Under250Ms: boolean; noLossNoDuplicates: boolean };
  notes: string[];
}

const ROOM = 'bench-fanout';
const CONNECT_CONCURRENCY = 64;
const JOIN_CONCURRENCY = 32;

/** A started server under test. */
interface Target {
  name: FanoutTargetName;
  senderUrl: string;
  receiverUrl: string;
  close(): Promise<void>;
}

async function startEmulatorTarget(): Promise<Target> {
  const emulator = await startEmulator({ port: 0, logLevel: 'silent' });
  const sender = emulator.issuer.mint({ sub: 'bench-sender', tokenUse: 'id', ttlSeconds: 3600 });
  const receiver = emulator.issuer.mint({ sub: 'bench-receiver', tokenUse: 'id', ttlSeconds: 3600 });
  return {
    name: 'emulator',
    senderUrl: `${emulator.url}?token=${encodeURIComponent(sender)}`,
    receiverUrl: `${emulator.url}?token=${encodeURIComponent(receiver)}`,
    close: () => emulator.close(),
  };
}

/**
 * The baseline: a raw `ws` server that speaks just enough of the protocol for the same client code
 * (join -> ack; send -> relay the frame's bytes to every other member, then ack).
 */
async function startBaselineTarget(): Promise<Target> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const room = new Set<WebSocket>();
  const sockets = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('message', (data, isBinary) => {
      const frame = JSON.parse(String(data)) as { action?: string; id?: string };
      const ref = JSON.stringify(frame.id ?? null);
      if (frame.action === 'send') {
        for (const client of room) if (client !== ws) client.send(data, { binary: isBinary });
        ws.send(`{"type":"ack","action":"send","ref":${ref}}`);
      } else if (frame.action === 'join') {
        room.add(ws);
        ws.send(`{"type":"ack","action":"join","ref":${ref},"room":"${ROOM}"}`);
      }
    });
    ws.on('close', () => {
      room.delete(ws);
      sockets.delete(ws);
    });
  });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
  return {
    name: 'baseline',
    senderUrl: url,
    receiverUrl: url,
    close: async () => {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Shared tallies of every receiver of one run. */
class DeliverySink {
  readonly latencies: Float64Array;
  /** Deliveries after which `done` resolves; set by {@link expect} once the number of sends is known. */
  expected = Number.POSITIVE_INFINITY;
  count = 0;
  duplicated = 0;
  errors = 0;
  lastArrival = 0;
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor(capacity: number) {
    this.latencies = new Float64Array(capacity);
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  expect(deliveries: number) {
    this.expected = deliveries;
    if (this.count >= deliveries) this.#resolve();
  }

  arrived(now: number, sentAt: number) {
    this.latencies[this.count++] = now - sentAt;
    this.lastArrival = now;
    if (this.count >= this.expected) this.#resolve();
  }
}

type Waiter = { resolve: () => void; reject: (error: Error) => void };

/** One benchmark client: tallies chat deliveries into the sink and answers waits for acks by `ref`. */
class Peer {
  readonly seen: Uint8Array;
  readonly #waiters = new Map<string, Waiter>();

  private constructor(
    readonly ws: WebSocket,
    messages: number,
    sink: DeliverySink,
  ) {
    this.seen = new Uint8Array(messages);
    ws.on('message', (data) => {
      const now = performance.now();
      const frame = JSON.parse(String(data)) as {
        type?: string;
        action?: string;
        id?: string;
        ref?: string;
        body?: { t?: number };
        code?: string;
      };
      // The emulator delivers a `chat` frame whose `ref` is the sender's client id; the baseline relays
      // the sender's own `send` frame (no `type`), whose `id` is that client id.
      const messageId =
        frame.type === 'chat' ? frame.ref : frame.type === undefined && frame.action === 'send' ? frame.id : undefined;
      if (messageId !== undefined) {
        const k = Number(messageId.slice(1));
        if (!(k >= 0 && k < messages) || typeof frame.body?.t !== 'number') sink.errors++;
        else if (this.seen[k] === 1) sink.duplicated++;
        else {
          this.seen[k] = 1;
          sink.arrived(now, frame.body.t);
        }
        return;
      }
      const waiter = frame.ref === undefined ? undefined : this.#waiters.get(frame.ref);
      if (waiter && frame.ref !== undefined) {
        this.#waiters.delete(frame.ref);
        if (frame.type === 'error') waiter.reject(new Error(`${frame.ref}: error ${frame.code}`));
        else waiter.resolve();
      } else if (frame.type !== 'presence') {
        // Unasked-for error frames, API Gateway's "Internal server error" frame (which has no ref), ...
        sink.errors++;
      }
    });
  }

  static connect(url: string, messages: number, sink: DeliverySink): Promise<Peer> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Peer(ws, messages, sink)));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(new Error(`connect refused with HTTP ${res.statusCode}`));
      });
      ws.once('error', reject);
    });
  }

  /** Sends a frame and resolves when the answer with `ref === id` arrives (rejects on an error frame). */
  request(id: string, text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiters.set(id, { resolve, reject });
      this.ws.send(text);
    });
  }

  join(): Promise<void> {
    return this.request('j', `{"action":"join","room":"${ROOM}","id":"j"}`);
  }
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

async function measure(target: Target, o: WsFanoutResult['options']): Promise<FanoutMeasurement> {
  const sink = new DeliverySink(o.clients * o.messages);
  const peers: Peer[] = [];
  try {
    const connectStarted = performance.now();
    const sender = await withDeadline(Peer.connect(target.senderUrl, o.messages, sink), o.deadlineMs, 'sender');
    peers.push(sender);
    await withDeadline(sender.join(), o.deadlineMs, 'sender join');

    const before = memorySample();
    await withDeadline(
      forEachLimit(Array.from({ length: o.clients }), CONNECT_CONCURRENCY, async () => {
        peers.push(await Peer.connect(target.receiverUrl, o.messages, sink));
      }),
      o.deadlineMs,
      `${target.name}: connecting ${o.clients} clients`,
    );
    const after = memorySample();
    const connectSeconds = seconds(connectStarted);

    const joinStarted = performance.now();
    const receivers = peers.slice(1);
    await withDeadline(
      forEachLimit(receivers, JOIN_CONCURRENCY, (peer) => peer.join()),
      o.deadlineMs,
      `${target.name}: ${o.clients} joins`,
    );
    const joinSeconds = seconds(joinStarted);

    const text = 'x'.repeat(o.textLength);
    let next = 0;
    let started = 0;
    const sendWorker = async () => {
      while (next < o.messages && performance.now() - started < o.sendBudgetMs) {
        const id = `m${next++}`;
        await sender.request(
          id,
          `{"action":"send","room":"${ROOM}","id":"${id}","body":{"t":${performance.now()},"text":"${text}"}}`,
        );
      }
    };
    const stopProfile = o.profileDir ? await startCpuProfile() : undefined;
    const cpu = cpuStopwatch();
    started = performance.now();
    let timedOut = false;
    try {
      await withDeadline(
        (async () => {
          await Promise.all(Array.from({ length: Math.min(o.window, o.messages) }, sendWorker));
          // Every send is acknowledged: the emulator has posted each delivery, the baseline queued it.
          sink.expect(o.clients * next);
          await sink.done;
        })(),
        o.sendBudgetMs + o.deadlineMs,
        `${target.name}: sending ${o.messages} messages to ${o.clients} clients`,
      );
    } catch (error) {
      if (!(error instanceof Error && error.name === 'DeadlineError')) throw error;
      timedOut = true;
    }
    const cpuSeconds = cpu();
    const cpuProfile = stopProfile
      ? await stopProfile(
          join(
            o.profileDir as string,
            `ws-fanout-${target.name}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`,
          ),
        )
      : undefined;
    const messagesSent = next;
    const expected = o.clients * messagesSent;
    // Late duplicates would arrive right behind the originals.
    await new Promise((resolve) => setTimeout(resolve, 100));

    const delivered = sink.count;
    const wallSeconds = ((delivered > 0 ? sink.lastArrival : performance.now()) - started) / 1000;
    const closeStarted = performance.now();
    for (const peer of peers) peer.ws.terminate();
    peers.length = 0;
    await withDeadline(target.close(), o.deadlineMs, `${target.name}: close`);
    return {
      target: target.name,
      clients: o.clients,
      messages: o.messages,
      messagesSent,
      truncated: messagesSent < o.messages,
      expected,
      delivered,
      lost: expected - delivered,
      duplicated: sink.duplicated,
      errors: sink.errors,
      timedOut,
      connectSeconds,
      joinSeconds,
      wallSeconds,
      deliveriesPerSecond: delivered / wallSeconds,
      latencyMs: percentiles(sink.latencies.subarray(0, delivered)),
      cpuSeconds,
      cpuSecondsPerMillionDeliveries: (cpuSeconds / delivered) * 1e6,
      coresBusy: cpuSeconds / wallSeconds,
      heapBytesPerConnection: (after.heapUsed - before.heapUsed) / o.clients,
      rssBytesPerConnection: (after.rss - before.rss) / o.clients,
      closeSeconds: seconds(closeStarted),
      ...(cpuProfile ? { cpuProfile } : {}),
    };
  } finally {
    for (const peer of peers) peer.ws.terminate();
  }
}

/** Sizes and defaults after `quick` is applied. */
export function resolveWsFanoutOptions(options: WsFanoutOptions = {}): WsFanoutResult['options'] {
  const quick = options.quick ?? false;
  return {
    quick,
    clients: options.clients ?? (quick ? 50 : 1000),
    messages: options.messages ?? (quick ? 20 : 1000),
    window: options.window ?? 16,
    textLength: options.textLength ?? 64,
    sendBudgetMs: options.sendBudgetMs ?? 60_000,
    deadlineMs: options.deadlineMs ?? 120_000,
    targets: options.targets ?? ['baseline', 'emulator'],
    ...(options.profileDir ? { profileDir: options.profileDir } : {}),
  };
}

/**
 * Runs the fan-out against each target in turn (each started and closed inside), and compares them.
 * Rejects if a target cannot be set up in time; a send phase that hits the deadline is reported as
 * `timedOut` with the deliveries that did arrive.
 */
export async function runWsFanout(options: WsFanoutOptions = {}): Promise<WsFanoutResult> {
  const o = resolveWsFanoutOptions(options);
  const result: WsFanoutResult = {
    options: o,
    notes: [
      `pacing: at most ${o.window} unacknowledged sends; the emulator acks after its fan-out, the baseline after queuing its broadcast`,
      'load generator (all clients) shares the process and its cores with the server: CPU figures cover both',
      'memory per connection: heap/RSS growth after a full GC from connecting N idle clients, client side included',
      'receivers share one user id so that setup does not fan out N²/2 presence frames',
    ],
  };
  for (const name of o.targets) {
    const target = await withDeadline(
      name === 'emulator' ? startEmulatorTarget() : startBaselineTarget(),
      o.deadlineMs,
      `starting ${name}`,
    );
    try {
      result[name] = await measure(target, o);
    } catch (error) {
      await target.close().catch(() => undefined);
      throw error;
    }
  }
  const { emulator, baseline } = result;
  if (emulator && baseline) {
    const figures = numericFigures(emulator);
    const base = numericFigures(baseline);
    result.ratios = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, ratio(v, base[k] as number)]));
    result.targets = {
      deliveriesRatioAtLeast25Percent: (result.ratios.deliveriesPerSecond ?? 0) >= 0.25,
      p99Under250Ms: emulator.latencyMs.p99 < 250,
      noLossNoDuplicates: emulator.lost === 0 && emulator.duplicated === 0,
    };
  }
  return result;
}

function numericFigures(m: FanoutMeasurement): Record<string, number> {
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
  };
}

/** Whether every target that ran delivered everything exactly once. */
export function wsFanoutCorrect(result: WsFanoutResult): boolean {
  return [result.emulator, result.baseline].every(
    (m) => m === undefined || (m.lost === 0 && m.duplicated === 0 && m.errors === 0 && !m.timedOut),
  );
}

function tableRows(result: WsFanoutResult): TableRow[] {
  const { emulator: e, baseline: b } = result;
  const row = (figure: string, pick: (m: FanoutMeasurement) => number, compare = true): TableRow => {
    const ev = e ? pick(e) : Number.NaN;
    const bv = b ? pick(b) : Number.NaN;
    return { figure, emulator: ev, 'raw ws': bv, 'emulator / raw ws': compare ? ratio(ev, bv) : undefined };
  };
  return [
    row('deliveries / s', (m) => m.deliveriesPerSecond),
    row('wall time, first send to last delivery (s)', (m) => m.wallSeconds),
    row('latency p50 (ms)', (m) => m.latencyMs.p50),
    row('latency p90 (ms)', (m) => m.latencyMs.p90),
    row('latency p99 (ms)', (m) => m.latencyMs.p99),
    row('latency max (ms)', (m) => m.latencyMs.max),
    row('messages sent (budget may stop early)', (m) => m.messagesSent, false),
    row('deliveries expected (N x sent)', (m) => m.expected, false),
    row('delivered', (m) => m.delivered, false),
    row('lost', (m) => m.lost, false),
    row('duplicated', (m) => m.duplicated, false),
    row('errors', (m) => m.errors, false),
    row('process CPU-s / 1M deliveries (server + clients)', (m) => m.cpuSecondsPerMillionDeliveries),
    row('cores busy during the run', (m) => m.coresBusy),
    row('heap KB / connection (server + client)', (m) => m.heapBytesPerConnection / 1024),
    row('RSS KB / connection (server + client)', (m) => m.rssBytesPerConnection / 1024),
    row('connect N clients (s)', (m) => m.connectSeconds),
    row('join N clients (s)', (m) => m.joinSeconds),
    row('close (s)', (m) => m.closeSeconds),
  ];
}

function parseTargets(list: string): FanoutTargetName[] {
  const names = list.split(',').filter(Boolean);
  const bad = names.find((n) => n !== 'emulator' && n !== 'baseline');
  if (bad !== undefined || names.length === 0)
    throw new TypeError(`--targets lists emulator and/or baseline, got "${list}"`);
  return names as FanoutTargetName[];
}

/** CLI entry: runs with `args`, prints the table, writes the JSON result; resolves whether it was correct. */
export async function main(args: BenchArgs = parseBenchArgs()): Promise<boolean> {
  const result = await runWsFanout({
    quick: args.quick,
    ...(args.flags.clients !== undefined ? { clients: intFlag(args, 'clients', 1000) } : {}),
    ...(args.flags.messages !== undefined ? { messages: intFlag(args, 'messages', 1000) } : {}),
    ...(args.flags.window !== undefined ? { window: intFlag(args, 'window', 16) } : {}),
    ...(typeof args.flags.targets === 'string' ? { targets: parseTargets(args.flags.targets) } : {}),
    ...(args.flags['budget-ms'] !== undefined ? { sendBudgetMs: intFlag(args, 'budget-ms', 60_000) } : {}),
    ...(args.flags.profile !== undefined ? { profileDir: RESULTS_DIR } : {}),
    ...(args.flags['deadline-ms'] !== undefined ? { deadlineMs: intFlag(args, 'deadline-ms', 120_000) } : {}),
  });
  const { clients, messages, window } = result.options;
  printTable(tableRows(result), {
    title: `ws-fanout: ${clients} clients in one room, ${messages} messages, window ${window}${args.quick ? ' (quick)' : ''}`,
  });
  for (const note of result.notes) console.log(`  note: ${note}`);
  for (const m of [result.emulator, result.baseline]) {
    if (m?.truncated) {
      console.log(
        `  note: ${m.target} sent ${m.messagesSent} of ${m.messages} messages within the ${result.options.sendBudgetMs} ms send budget`,
      );
    }
    if (m?.cpuProfile) console.log(`  ${m.target} send-phase CPU profile: ${m.cpuProfile}`);
  }
  if (result.targets) {
    const t = result.targets;
    const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(
      `  issue 7 targets: deliveries/s >= 25% of raw ws ${mark(t.deliveriesRatioAtLeast25Percent)}; ` +
        `p99 < 250 ms ${mark(t.p99Under250Ms)}; 0 lost, 0 duplicated ${mark(t.noLossNoDuplicates)}`,
    );
  }
  if (args.write) console.log(`  result: ${writeResult('ws-fanout', { ...result })}`);
  const correct = wsFanoutCorrect(result);
  if (!correct) console.error('ws-fanout: lost, duplicated or failed deliveries (see the table)');
  return correct;
}

runAsScript(import.meta.url, () => main());
