/** The soak's correctness checks: never speed, so a slow machine cannot fail them. */
import type { SoakResult } from './run.js';

/** The emulator's heap may grow this much from the warm baseline to the end (after GC) before the soak
 * calls it a leak: stored data is on disk by default, so what stays is caches (compiled code, SDK clients,
 * lifecycle version numbers per MQTT client id). */
export const DEFAULT_HEAP_GROWTH_LIMIT = 32 * 1024 * 1024;

/**
 * The refusals the service answered (`http-401`, `connack-5`, `suback-128`, ...), by reason. The others are
 * connection attempts that failed on the way (a handshake not answered within the client's 60 s, a reset): the
 * emulator is one process, and a storm of thousands of simultaneous connects overflows its listen backlog and
 * its event loop. Clients retry those, as the SDK does; they are reported, and the quick test expects none.
 */
export function serviceRefusals(refusals: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(refusals).filter(([reason]) => / (http|connack|suback)-\d+$/.test(reason)));
}

/** The correctness checks (never speed). `heapGrowthLimit` in bytes. */
export function soakChecks(result: SoakResult, heapGrowthLimit = DEFAULT_HEAP_GROWTH_LIMIT): Record<string, boolean> {
  const { chat, notifications: n, table, counters: c, traffic: t } = result;
  const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
  return {
    'chat: none lost': chat.lost === 0,
    'chat: none duplicated': chat.duplicated === 0,
    'chat: none missed live': chat.missedLive === 0,
    'chat: no unknown or mismatched seq': chat.unknownReceived === 0 && chat.idMismatches === 0 && c.seqConflicts === 0,
    'table: every ack stored once, nothing else': table.missing === 0 && table.unknown === 0 && table.storedTwice === 0,
    'table: every open membership subscribed': result.subscriptions.missing === 0,
    'notifications: each in its inbox once': n.missingFromInbox === 0 && n.duplicatedInInbox === 0 && n.unknown === 0,
    'notifications: none duplicated or missed live': n.duplicatedLive === 0 && n.missedLive === 0,
    'notifications: notify never failed, retries deduplicated': t.notifyErrors === 0 && t.notifyRetryMismatches === 0,
    'storms: every client recovered': result.storms.every((s) => s.notRecovered === 0),
    'no connection refused by the service (HTTP status, CONNACK or SUBACK code)':
      sum(serviceRefusals(result.ramp.refusals)) === 0 && sum(serviceRefusals(c.refusals)) === 0,
    'no error frame, unknown frame or unanswered request':
      sum(c.errorFrames) === 0 && c.unknownFrames === 0 && c.pushedErrors === 0 && c.requestTimeouts === c.lateAnswers,
    'no operation failed': sum(t.operationErrors) === 0,
    'no drop outside a storm': c.unexpectedDrops === 0,
    'emulator: no warning or error line': result.logs.lines === 0,
    'emulator: handles back to baseline': Object.keys(result.memory.extraResources).length === 0,
    [`emulator: heap growth after GC under ${Math.round(heapGrowthLimit / 2 ** 20)} MiB`]:
      result.memory.heapGrowth < heapGrowthLimit,
  };
}
