/**
 * The console's view of the emulator's fault injection (local/src/faults/). The injector (`emulator.faults`:
 * `add(rule)`, `list()`, `remove(id)`, `clear()`, rules such as `{ target: 'dynamodb', fault: 'throttle',
 * times: 3 }`) is used through the few methods the console needs and validates rules itself. With fault
 * injection off the console falls back to the gateway's own `injectPostFaults` (the next `@connections` posts
 * to one connection fail with given statuses).
 */
import { FAULTS_BY_TARGET } from '../faults/rules.js';
import type { FaultsView } from './types.js';

/** What the console needs of a fault registry. Results may be promises. */
export interface FaultRegistryLike {
  add(rule: unknown): unknown;
  list(): unknown;
  remove(id: string): unknown;
  clear(): unknown;
}

/** The registry, if `value` is one. */
export function toFaultRegistry(value: unknown): FaultRegistryLike | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const candidate = value as Record<string, unknown>;
  const methods = ['add', 'list', 'remove', 'clear'];
  return methods.every((name) => typeof candidate[name] === 'function') ? (value as FaultRegistryLike) : undefined;
}

/** The faults panel's data. */
export async function readFaults(registry: FaultRegistryLike | undefined): Promise<FaultsView> {
  const targets: FaultsView['targets'] = FAULTS_BY_TARGET;
  if (!registry) return { mode: 'post-faults', rules: [], targets };
  const listed = await registry.list();
  const rules = Array.isArray(listed)
    ? listed.filter((rule): rule is Record<string, unknown> => typeof rule === 'object' && rule !== null)
    : [];
  // Rules may hold functions (a custom `match`): only their data is sent.
  return { mode: 'rules', rules: JSON.parse(JSON.stringify(rules)) as Record<string, unknown>[], targets };
}
