/**
 * The console's view of the emulator's fault injection (local/src/faults/). The injector (`emulator.faults`,
 * rules such as `{ target: 'dynamodb', fault: 'throttle', times: 3 }`) validates rules itself. With fault
 * injection off the console falls back to the gateway's own `injectPostFaults` (the next `@connections` posts
 * to one connection fail with given statuses).
 */
import type { FaultInjector } from '../faults/index.js';
import { FAULTS_BY_TARGET } from '../faults/rules.js';
import type { FaultsView } from './types.js';

/** The faults panel's data: the rules (copies, with their counters), or the gateway's fallback mode. */
export function readFaults(injector: FaultInjector | undefined): FaultsView {
  const targets: FaultsView['targets'] = FAULTS_BY_TARGET;
  if (!injector) return { mode: 'post-faults', rules: [], targets };
  return { mode: 'rules', rules: injector.list() as unknown as Record<string, unknown>[], targets };
}
