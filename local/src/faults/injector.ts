/**
 * The fault injector: the rules in force and their counters. Each emulated service asks it, through a
 * {@link FaultHook}, whether to fail the request in hand; the service then answers the way AWS fails (see
 * ./rules.ts), so the real AWS SDK's retries and the handlers' own error handling are what get exercised.
 *
 * Rules are tried in the order they were added; the first active rule that matches a request, and is past its
 * `skip` and wins its `probability` draw, fires. Draws come from a generator seeded with {@link FaultInjector.seed},
 * so a run with the same seed and the same requests fails the same requests.
 */
import type { EmulatorLogger } from '../log.js';
import { FaultTargetUnavailableError, InvalidFaultRuleError } from './errors.js';
import {
  type FaultOf,
  type FaultRequestOf,
  type FaultRule,
  type FaultRuleInput,
  type FaultTarget,
  FUNCTION_NAMES,
  type FunctionName,
  parseFaultRule,
  ruleMatches,
} from './rules.js';

/** What a service emulation asks before serving a request. */
export interface FaultHook<T extends FaultTarget> {
  /** Whether any rule of the target is active; when none is, the service need not describe its requests. */
  armed(): boolean;
  /** The fault to inject into this request, if a rule fires (which counts it). */
  decide(request: FaultRequestOf[T]): FaultOf[T] | undefined;
}

/** Fault injection settings of the emulator (`startEmulator({ faults })`, `--faults file.json`). */
export interface FaultOptions {
  /** Rules in force from the start. @default none */
  rules?: readonly FaultRuleInput[];
  /** Seed of the generator behind `probability`. @default a random one, reported as `faults.seed` */
  seed?: number;
  /**
   * Test hook: shorter function timeouts (ms) than the CDK stack's ({@link FUNCTION_TIMEOUTS_MS}), so an
   * invocation hung on a `timeout` fault of a service ends in a test's time rather than after 29 or 60 s.
   */
  functionTimeoutsMs?: Partial<Record<FunctionName, number>>;
}

/** What `startEmulator({ faults })` takes: `true` (on, no rules yet), the rules to start with, or every setting. */
export type FaultSetting = boolean | readonly FaultRuleInput[] | FaultOptions;

/** The settings a {@link FaultSetting} means, or undefined when fault injection is off. */
export function faultOptionsOf(setting: FaultSetting | undefined): FaultOptions | undefined {
  if (setting === undefined || setting === false) return undefined;
  if (setting === true) return {};
  if (Array.isArray(setting)) return { rules: setting as readonly FaultRuleInput[] };
  return setting as FaultOptions;
}

/**
 * Checks fault settings that come from JSON (the CLI's `--faults` file): a list of rules, or an object with
 * `rules`, `seed` and `functionTimeoutsMs`.
 * @throws {InvalidFaultRuleError} naming the first field that is wrong
 */
export function parseFaultOptions(value: unknown): FaultOptions {
  if (Array.isArray(value)) return { rules: value.map((rule, i) => parseFaultRule(rule, `rules[${i}]`)) };
  if (typeof value !== 'object' || value === null)
    throw new InvalidFaultRuleError('faults', value, 'a list of rules or an object with `rules`');
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!['rules', 'seed', 'functionTimeoutsMs'].includes(key))
      throw new InvalidFaultRuleError(key, record[key], 'absent (fault settings have rules, seed, functionTimeoutsMs)');
  }
  const options: FaultOptions = {};
  if (record.rules !== undefined) {
    if (!Array.isArray(record.rules)) throw new InvalidFaultRuleError('rules', record.rules, 'a list of rules');
    options.rules = record.rules.map((rule, i) => parseFaultRule(rule, `rules[${i}]`));
  }
  if (record.seed !== undefined) options.seed = checkSeed(record.seed);
  if (record.functionTimeoutsMs !== undefined)
    options.functionTimeoutsMs = parseFunctionTimeouts(record.functionTimeoutsMs);
  return options;
}

function checkSeed(seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed))
    throw new InvalidFaultRuleError('seed', seed, 'a whole number');
  return seed;
}

/** @throws {InvalidFaultRuleError} an unknown function or a timeout that is not a whole number of ms >= 1 */
export function parseFunctionTimeouts(value: unknown): Partial<Record<FunctionName, number>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidFaultRuleError('functionTimeoutsMs', value, 'an object of function name -> ms');
  for (const [name, ms] of Object.entries(value)) {
    if (!(FUNCTION_NAMES as readonly string[]).includes(name))
      throw new InvalidFaultRuleError(`functionTimeoutsMs.${name}`, ms, `keyed by one of ${FUNCTION_NAMES.join(', ')}`);
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1)
      throw new InvalidFaultRuleError(`functionTimeoutsMs.${name}`, ms, 'a whole number of ms >= 1');
  }
  return value as Partial<Record<FunctionName, number>>;
}

/** Options of {@link FaultInjector}. */
export interface FaultInjectorOptions {
  /** @default a random 32-bit seed */
  seed?: number;
  /** Targets this emulator does not run, with the reason a rule for them is refused. */
  unavailable?: Partial<Record<FaultTarget, string>>;
  /** Where each fired fault is logged (tag `FAULT`). */
  logger?: EmulatorLogger;
}

interface HeldRule {
  input: FaultRuleInput;
  state: { id: string; matched: number; fired: number; active: boolean };
}

/** mulberry32: small, fast and good enough to decide which requests fail. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The rules in force. `add`, `list`, `get`, `remove` and `clear` take and return plain JSON, so an admin API can
 * serve them as they are.
 * @example
 * const emulator = await startEmulator({ port: 0, faults: true });
 * const rule = emulator.faults!.add({ target: 'connections', match: { connectionId }, fault: '429', times: 2 });
 * // ... a fan-out retries the two 429s and delivers ...
 * expect(emulator.faults!.get(rule.id)?.fired).toBe(2);
 * emulator.faults!.remove(rule.id);
 */
export class FaultInjector {
  /** The seed of the `probability` draws: pass it back (`faults: { seed }`) to fail the same requests again. */
  readonly seed: number;
  readonly #rules: HeldRule[] = [];
  readonly #random: () => number;
  readonly #unavailable: Partial<Record<FaultTarget, string>>;
  readonly #logger: EmulatorLogger | undefined;
  readonly #waiters: { id: string; times: number; resolve: (rule: FaultRule) => void }[] = [];
  #nextId = 1;

  constructor(options: FaultInjectorOptions = {}) {
    this.seed = options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : checkSeed(options.seed);
    this.#random = seededRandom(this.seed);
    this.#unavailable = options.unavailable ?? {};
    this.#logger = options.logger;
  }

  /**
   * Adds a rule after the others and returns it with its id and counters.
   * @throws {InvalidFaultRuleError} the rule is not valid (see {@link parseFaultRule}), or its `id` is taken
   * @throws {FaultTargetUnavailableError} this emulator does not run the rule's target
   */
  add(rule: FaultRuleInput): FaultRule {
    const input = parseFaultRule(rule);
    const reason = this.#unavailable[input.target];
    if (reason !== undefined) throw new FaultTargetUnavailableError(input.target, reason);
    let id = input.id;
    if (id !== undefined && this.#find(id) !== undefined)
      throw new InvalidFaultRuleError('rule.id', id, 'an id no other rule has');
    while (id === undefined || this.#find(id) !== undefined) id = `f${this.#nextId++}`;
    const held: HeldRule = { input: { ...input, id }, state: { id, matched: 0, fired: 0, active: true } };
    this.#rules.push(held);
    return snapshot(held);
  }

  /** Every rule, in the order they are tried, with its counters. */
  list(): FaultRule[] {
    return this.#rules.map(snapshot);
  }

  /** One rule with its counters, or undefined. */
  get(id: string): FaultRule | undefined {
    const held = this.#find(id);
    return held === undefined ? undefined : snapshot(held);
  }

  /** Removes a rule; false when there is none with that id. A request already held by its `timeout` stays held. */
  remove(id: string): boolean {
    const held = this.#find(id);
    if (held === undefined) return false;
    this.#rules.splice(this.#rules.indexOf(held), 1);
    return true;
  }

  /** Removes every rule; returns how many there were. */
  clear(): number {
    return this.#rules.splice(0).length;
  }

  /**
   * Resolves once the rule has fired `times` times in all (at once if it has), for a test that must know a fault
   * happened before it acts, e.g. moves the clock. Never resolves if the rule is removed first.
   */
  whenFired(id: string, times = 1): Promise<FaultRule> {
    const held = this.#find(id);
    if (held !== undefined && held.state.fired >= times) return Promise.resolve(snapshot(held));
    return new Promise((resolve) => this.#waiters.push({ id, times, resolve }));
  }

  /** The hook a service of `target` asks (emulator wiring). */
  hook<T extends FaultTarget>(target: T): FaultHook<T> {
    return {
      armed: () => this.#rules.some((r) => r.input.target === target && r.state.active),
      decide: (request) => this.#decide(target, request),
    };
  }

  #notify(rule: HeldRule): void {
    const due = this.#waiters.filter((w) => w.id === rule.state.id && w.times <= rule.state.fired);
    if (due.length === 0) return;
    const now = snapshot(rule);
    for (const waiter of due) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      // After the service has answered: the waiter runs once the fault is in effect, not before.
      setImmediate(() => waiter.resolve(now));
    }
  }

  #find(id: string): HeldRule | undefined {
    return this.#rules.find((r) => r.state.id === id);
  }

  #decide<T extends FaultTarget>(target: T, request: FaultRequestOf[T]): FaultOf[T] | undefined {
    for (const rule of this.#rules) {
      const { input, state } = rule;
      if (input.target !== target || !state.active) continue;
      if (!ruleMatches(target, input.match as Record<string, unknown> | undefined, request)) continue;
      state.matched += 1;
      if (state.matched <= (input.skip ?? 0)) continue;
      if (input.probability !== undefined && input.probability < 1 && this.#random() >= input.probability) continue;
      state.fired += 1;
      if (input.times !== undefined && state.fired >= input.times) state.active = false;
      const connectionId = 'connectionId' in request ? request.connectionId : undefined;
      this.#logger?.line('info', 'FAULT', `${state.id} ${target} ${input.fault} #${state.fired} ${describe(request)}`, {
        status: input.fault,
        ...(connectionId === undefined ? {} : { connectionId }),
      });
      this.#notify(rule);
      return input.fault as FaultOf[T];
    }
    return undefined;
  }
}

function snapshot(held: HeldRule): FaultRule {
  return { ...(structuredClone(held.input) as FaultRuleInput), ...held.state };
}

/** A short description of a request for the log line. */
function describe(request: FaultRequestOf[FaultTarget]): string {
  if ('items' in request) {
    const item = request.items[0];
    return [request.operation, item?.partitionKey, item?.sortKey].filter(Boolean).join(' ');
  }
  if ('topic' in request) return request.topic;
  if ('handler' in request) return [request.handler, request.route, request.connectionId].filter(Boolean).join(' ');
  return `${request.operation} ${request.connectionId}`;
}
