/**
 * Load and soak, quick form (issue 8): the soak driver (bench/lib/soak/run.ts) with QUICK_SOAK — 500 connections
 * on both channels (WebSocket API, MQTT over TCP and over WebSocket, MQTT 3.1.1 and 5) in rooms, chatting,
 * joining and leaving, getting backend notifications (some retried with the same key), through one reconnect
 * storm (the emulator drops every connection at once and every client reconnects at once, rejoins and catches
 * up). 2,000 connections do not fit a test on 2 cores (their storm alone takes 2-3 minutes): the full soak is
 * `npm run soak`. The emulator runs in a child process, so its memory and handles are measured alone.
 *
 * Correctness only, never speed: nothing lost or duplicated, the table holds exactly what was acknowledged, every
 * client recovered, no refused or failed connection, no error frame, no emulator warning, handles back to the
 * warm baseline and heap growth after GC under a generous bound. Waits are awaited events under deadlines; only the
 * handle check polls, as nothing signals that an idle keep-alive socket has timed out.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_GROWTH_LIMIT } from '../../bench/lib/soak/checks.js';
import { QUICK_SOAK } from '../../bench/lib/soak/options.js';
import { runSoak, type SoakResult } from '../../bench/lib/soak/run.js';

/** One run for every assertion below (~50 s alone on 2 cores, ~90 s next to another heavy suite). */
let run: SoakResult | undefined;

function soak(): SoakResult {
  if (!run) throw new Error('the soak did not run (see beforeAll)');
  return run;
}

beforeAll(async () => {
  run = await runSoak({ ...QUICK_SOAK, seed: 8 });
}, 300_000);

describe(`load: ${QUICK_SOAK.connections} connections on both channels through a reconnect storm`, () => {
  it('runs the load: every channel, rooms, chat, churn, notifications and one storm of everyone', () => {
    const r = soak();
    expect(r.plan.clients.websocket + r.plan.clients['mqtt-tcp'] + r.plan.clients['mqtt-ws']).toBe(
      QUICK_SOAK.connections,
    );
    expect(Math.min(r.plan.clients.websocket, r.plan.clients['mqtt-tcp'], r.plan.clients['mqtt-ws'])).toBeGreaterThan(
      0,
    );
    expect(r.chat.messages).toBeGreaterThan(0);
    expect(r.chat.required).toBeGreaterThan(r.chat.messages);
    expect(r.traffic.churnJoins).toBeGreaterThan(0);
    expect(r.notifications.recipients).toBeGreaterThan(0);
    expect(r.storms).toHaveLength(1);
    const [storm] = r.storms;
    expect((storm?.dropped.websocket ?? 0) + (storm?.dropped.mqtt ?? 0)).toBe(QUICK_SOAK.connections);
  });

  it('delivers every acknowledged message once to every member, live or by catch-up, and stores it once', () => {
    const { chat, table, subscriptions } = soak();
    const why = [...chat.examples, ...table.examples, ...subscriptions.examples].join('\n');
    expect(
      {
        lost: chat.lost,
        duplicated: chat.duplicated,
        missedLive: chat.missedLive,
        idMismatches: chat.idMismatches,
        unknownReceived: chat.unknownReceived,
      },
      why,
    ).toEqual({ lost: 0, duplicated: 0, missedLive: 0, idMismatches: 0, unknownReceived: 0 });
    expect(chat.deliveredLive + chat.viaCatchUp).toBe(chat.required);
    expect({ missing: table.missing, unknown: table.unknown, storedTwice: table.storedTwice }, why).toEqual({
      missing: 0,
      unknown: 0,
      storedTwice: 0,
    });
    expect(table.matched).toBe(chat.messages);
    expect(subscriptions.missing, why).toBe(0);
  });

  it('puts every notification in its inbox once and delivers it live at most once', () => {
    const { notifications: n, traffic } = soak();
    expect(
      {
        missingFromInbox: n.missingFromInbox,
        duplicatedInInbox: n.duplicatedInInbox,
        duplicatedLive: n.duplicatedLive,
        missedLive: n.missedLive,
        unknown: n.unknown,
        notifyErrors: traffic.notifyErrors,
        retryMismatches: traffic.notifyRetryMismatches,
      },
      n.examples.join('\n'),
    ).toEqual({
      missingFromInbox: 0,
      duplicatedInInbox: 0,
      duplicatedLive: 0,
      missedLive: 0,
      unknown: 0,
      notifyErrors: 0,
      retryMismatches: 0,
    });
  });

  it('absorbs the storm: every client reconnected, rejoined and caught up, with no failed attempt or error', () => {
    const { storms, ramp, counters, traffic, logs } = soak();
    expect(storms.map((s) => s.notRecovered)).toEqual([0]);
    expect({ ramp: ramp.refusals, later: counters.refusals }).toEqual({ ramp: {}, later: {} });
    expect({
      errorFrames: counters.errorFrames,
      requestTimeouts: counters.requestTimeouts,
      unknownFrames: counters.unknownFrames,
      pushedErrors: counters.pushedErrors,
      unexpectedDrops: counters.unexpectedDrops,
      operationErrors: traffic.operationErrors,
    }).toEqual({
      errorFrames: {},
      requestTimeouts: 0,
      unknownFrames: 0,
      pushedErrors: 0,
      unexpectedDrops: 0,
      operationErrors: {},
    });
    expect(logs.lines, logs.first.join('\n')).toBe(0);
  });

  it('returns the emulator to its warm baseline: handles, and heap after a full GC within bounds', () => {
    const { memory, checks } = soak();
    expect(memory.extraResources).toEqual({});
    expect(memory.heapGrowth).toBeLessThan(DEFAULT_HEAP_GROWTH_LIMIT);
    // Every check of the driver, in one place (the assertions above name the figures).
    expect(Object.entries(checks).filter(([, ok]) => !ok)).toEqual([]);
  });
});
