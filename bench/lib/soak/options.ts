/**
 * The soak's options: one typed defaults object, merged once ({@link resolveSoakOptions}), and the
 * command-line flags that set them ({@link soakOptionsFromArgs}).
 */
import { type BenchArgs, intFlag } from '../args.js';
import { RESULTS_DIR } from '../result.js';

/** How the clients lose their connections in a reconnect storm. */
export type StormMode =
  /** The emulator closes every socket itself: API Gateway `DELETE @connections` for WebSocket (1000, then
   * `$disconnect`), an IoT `DeleteConnection` for MQTT (MQTT 5 clients get a DISCONNECT first). */
  | 'server'
  /** Every client cuts its own socket without a close frame or DISCONNECT, as a lost network does. */
  | 'client';

export const STORM_MODES: readonly StormMode[] = ['server', 'client'];

/** Options of `runSoak`. Every field is optional; the defaults are the full soak of issue 8. */
export interface SoakOptions {
  /** Concurrent connections (one user each). @default 2000 */
  connections?: number;
  /** Steady traffic, ms: the traffic phase lasts this long plus the time its storms take to be absorbed (they
   * come evenly spaced in the steady time). @default 300000 (5 minutes) */
  durationMs?: number;
  /** Share of the connections on MQTT (the rest on the WebSocket API). @default 0.5 */
  mqttShare?: number;
  /** Share of the MQTT connections that use MQTT over WebSocket (`/mqtt`) instead of TCP. @default 0.25 */
  mqttOverWsShare?: number;
  /** Seed of the plan: rooms, members, who does what when. @default 1 */
  seed?: number;
  /** Rooms each user is in from the start (its home rooms; churn joins come on top). @default 2 */
  roomsPerUser?: number;
  /**
   * Largest room. Presence makes a storm cost about the sum of the squares of the room sizes (every member's
   * leave and rejoin is announced to every other member), so a smaller cap buys more connections in a short
   * run. @default 60 (the `big` rooms of the mix, see plan.ts)
   */
  maxRoomSize?: number;
  /** Chat messages a second, over all users. @default 6 per 1,000 connections */
  chatPerSecond?: number;
  /** Joins and leaves a second (a user joins a room it is not in, or leaves one it joined so). @default 2 per
   * 1,000 connections */
  churnPerSecond?: number;
  /** Backend `notify` calls a second, each to 1-8 users. @default 1 per 1,000 connections */
  notifyPerSecond?: number;
  /** Share of `notify` calls repeated with the same key, as a backend retry would: each must answer
   * `duplicate` and deliver nothing twice. @default 0.05 */
  notifyRetryShare?: number;
  /** Reconnect storms during the traffic phase, evenly spaced. @default 2 */
  storms?: number;
  /** Storm kinds, used in turn. @default ['server', 'client'] */
  stormModes?: readonly StormMode[];
  /** Traffic that runs after the last storm has been absorbed, at least, ms (the phase lasts `durationMs` or
   * longer): the rejoined clients must get live traffic again. @default 10000 */
  trafficAfterStormMs?: number;
  /** Every how many ms the emulator's memory, handles and CPU are sampled (no GC). @default 5000 */
  sampleEveryMs?: number;
  /** Every how many ms of the traffic phase the emulator's heap is also sampled after a forced GC (0: never).
   * @default 60000 */
  gcSampleEveryMs?: number;
  /**
   * Where the emulator's DynamoDB keeps its data: `disk` (LevelDB in a temporary directory) keeps the stored
   * messages out of the emulator's heap, so heap growth is the emulator's own; `memory` is `npm start`'s
   * default. @default 'disk'
   */
  store?: 'disk' | 'memory';
  /** Connection handshakes in flight during the initial ramp (a storm reconnects everyone at once). @default 64 */
  rampConcurrency?: number;
  /** A client idle this long sends a `ping`, as the SDK's heartbeat does (API Gateway closes connections idle
   * for 10 minutes). @default 240000 */
  heartbeatMs?: number;
  /** Deadline of each phase's waits, ms: a guard against a hang, not a budget. @default 300000 */
  phaseDeadlineMs?: number;
  /** Writes a CPU profile of the emulator child (the whole run) into this directory. @default none */
  cpuProfileDir?: string;
  /** Writes heap snapshots of the emulator child at the baseline and at the end into this directory, to find
   * what a heap growth is made of. @default none */
  heapSnapshotDir?: string;
  /** Progress lines (phases, storms). @default none */
  progress?: (line: string) => void;
}

/** {@link SoakOptions} with every default applied. */
type DiagnosticOptions = 'progress' | 'cpuProfileDir' | 'heapSnapshotDir';
export type ResolvedSoakOptions = Required<Omit<SoakOptions, DiagnosticOptions>> & Pick<SoakOptions, DiagnosticOptions>;

export const SOAK_DEFAULTS = {
  connections: 2000,
  durationMs: 300_000,
  mqttShare: 0.5,
  mqttOverWsShare: 0.25,
  seed: 1,
  roomsPerUser: 2,
  maxRoomSize: 60,
  notifyRetryShare: 0.05,
  storms: 2,
  stormModes: STORM_MODES,
  trafficAfterStormMs: 10_000,
  sampleEveryMs: 5_000,
  gcSampleEveryMs: 60_000,
  store: 'disk',
  rampConcurrency: 64,
  heartbeatMs: 240_000,
  phaseDeadlineMs: 300_000,
} as const;

/**
 * The quick form (`--quick`, and test/reliability/load.test.ts): 500 connections through one server-side storm in
 * about 50 s on a 2-core machine (~20 s of it fixed: the warm baseline, and the handle check's wait for idle
 * keep-alive sockets to time out), where 2,000 take minutes (their ramp alone ~60 s, each storm 2-3 min). Rooms of
 * at most 6 and one home room each keep the storm's presence traffic (quadratic in room size) small; the rates
 * are raised so the short run still carries a few hundred messages and some `notify` retries.
 */
export const QUICK_SOAK: SoakOptions = {
  connections: 500,
  durationMs: 6_000,
  storms: 1,
  stormModes: ['server'],
  trafficAfterStormMs: 4_000,
  roomsPerUser: 1,
  maxRoomSize: 6,
  chatPerSecond: 8,
  churnPerSecond: 2,
  notifyPerSecond: 2,
  notifyRetryShare: 0.25,
  sampleEveryMs: 2_000,
  gcSampleEveryMs: 0,
};

/** Per-1,000-connection rates of the defaults: load that a 2-core machine carries with room to spare. */
const RATES_PER_THOUSAND = { chat: 6, churn: 2, notify: 1 } as const;

function share(name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new RangeError(`${name} must be between 0 and 1, got ${value}`);
  return value;
}

function positive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0))
    throw new RangeError(`${name} must be ${allowZero ? 'zero or more' : 'positive'}, got ${value}`);
  return value;
}

/** Merges the defaults once and checks every value. */
export function resolveSoakOptions(options: SoakOptions = {}): ResolvedSoakOptions {
  const connections = Math.floor(positive('connections', options.connections ?? SOAK_DEFAULTS.connections));
  const perThousand = connections / 1000;
  const modes = options.stormModes ?? SOAK_DEFAULTS.stormModes;
  if (modes.length === 0 || modes.some((m) => !STORM_MODES.includes(m)))
    throw new RangeError(`stormModes lists ${STORM_MODES.join(' and/or ')}, got ${modes.join(',')}`);
  const store = options.store ?? SOAK_DEFAULTS.store;
  if (store !== 'disk' && store !== 'memory') throw new RangeError(`store is disk or memory, got ${String(store)}`);
  return {
    connections,
    durationMs: positive('durationMs', options.durationMs ?? SOAK_DEFAULTS.durationMs),
    mqttShare: share('mqttShare', options.mqttShare ?? SOAK_DEFAULTS.mqttShare),
    mqttOverWsShare: share('mqttOverWsShare', options.mqttOverWsShare ?? SOAK_DEFAULTS.mqttOverWsShare),
    seed: Math.floor(options.seed ?? SOAK_DEFAULTS.seed),
    roomsPerUser: Math.floor(positive('roomsPerUser', options.roomsPerUser ?? SOAK_DEFAULTS.roomsPerUser)),
    maxRoomSize: Math.max(2, Math.floor(positive('maxRoomSize', options.maxRoomSize ?? SOAK_DEFAULTS.maxRoomSize))),
    chatPerSecond: positive('chatPerSecond', options.chatPerSecond ?? RATES_PER_THOUSAND.chat * perThousand, true),
    churnPerSecond: positive('churnPerSecond', options.churnPerSecond ?? RATES_PER_THOUSAND.churn * perThousand, true),
    notifyPerSecond: positive(
      'notifyPerSecond',
      options.notifyPerSecond ?? RATES_PER_THOUSAND.notify * perThousand,
      true,
    ),
    notifyRetryShare: share('notifyRetryShare', options.notifyRetryShare ?? SOAK_DEFAULTS.notifyRetryShare),
    storms: Math.floor(positive('storms', options.storms ?? SOAK_DEFAULTS.storms, true)),
    stormModes: modes,
    trafficAfterStormMs: positive(
      'trafficAfterStormMs',
      options.trafficAfterStormMs ?? SOAK_DEFAULTS.trafficAfterStormMs,
      true,
    ),
    sampleEveryMs: positive('sampleEveryMs', options.sampleEveryMs ?? SOAK_DEFAULTS.sampleEveryMs),
    gcSampleEveryMs: positive('gcSampleEveryMs', options.gcSampleEveryMs ?? SOAK_DEFAULTS.gcSampleEveryMs, true),
    store,
    rampConcurrency: Math.floor(positive('rampConcurrency', options.rampConcurrency ?? SOAK_DEFAULTS.rampConcurrency)),
    heartbeatMs: positive('heartbeatMs', options.heartbeatMs ?? SOAK_DEFAULTS.heartbeatMs),
    phaseDeadlineMs: positive('phaseDeadlineMs', options.phaseDeadlineMs ?? SOAK_DEFAULTS.phaseDeadlineMs),
    progress: options.progress,
    cpuProfileDir: options.cpuProfileDir,
    heapSnapshotDir: options.heapSnapshotDir,
  };
}

function numberFlag(args: BenchArgs, name: string): number | undefined {
  const raw = args.flags[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw === true || !Number.isFinite(value)) throw new TypeError(`--${name} needs a number, got "${String(raw)}"`);
  return value;
}

/**
 * Reads the soak's flags: `--connections N --minutes M (or --seconds S) --mqtt-share F --mqtt-ws-share F
 * --seed N --rooms-per-user N --max-room-size N --chat-rate R --churn-rate R --notify-rate R --storms N
 * --storm-modes server,client --sample-ms MS --gc-sample-ms MS --store disk|memory --profile --heap-snapshots`.
 * `--quick` is {@link QUICK_SOAK}; flags given with it override it.
 */
export function soakOptionsFromArgs(args: BenchArgs): SoakOptions {
  const minutes = numberFlag(args, 'minutes');
  const seconds = numberFlag(args, 'seconds');
  const modes = args.flags['storm-modes'];
  const store = args.flags.store;
  const options: SoakOptions = args.quick ? { ...QUICK_SOAK } : {};
  const set = <K extends keyof SoakOptions>(key: K, value: SoakOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('connections', args.flags.connections === undefined ? undefined : intFlag(args, 'connections', 2000));
  set('durationMs', seconds !== undefined ? seconds * 1000 : minutes !== undefined ? minutes * 60_000 : undefined);
  set('mqttShare', numberFlag(args, 'mqtt-share'));
  set('mqttOverWsShare', numberFlag(args, 'mqtt-ws-share'));
  set('seed', numberFlag(args, 'seed'));
  set('roomsPerUser', numberFlag(args, 'rooms-per-user'));
  set('maxRoomSize', numberFlag(args, 'max-room-size'));
  set('chatPerSecond', numberFlag(args, 'chat-rate'));
  set('churnPerSecond', numberFlag(args, 'churn-rate'));
  set('notifyPerSecond', numberFlag(args, 'notify-rate'));
  set('storms', numberFlag(args, 'storms'));
  set('sampleEveryMs', numberFlag(args, 'sample-ms'));
  set('gcSampleEveryMs', numberFlag(args, 'gc-sample-ms'));
  if (typeof modes === 'string') options.stormModes = modes.split(',').filter(Boolean) as StormMode[];
  if (typeof store === 'string') options.store = store as 'disk' | 'memory';
  if (args.flags.profile !== undefined) options.cpuProfileDir = RESULTS_DIR;
  if (args.flags['heap-snapshots'] !== undefined) options.heapSnapshotDir = RESULTS_DIR;
  return options;
}
