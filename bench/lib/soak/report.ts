/** The soak's tables for stdout. */
import { formatTable, type TableRow } from '../table.js';
import { serviceRefusals } from './checks.js';
import type { SoakResult } from './run.js';

const MiB = 2 ** 20;
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const s = (ms: number) => Math.round(ms / 100) / 10;
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const listed = (counts: Record<string, number>) =>
  Object.keys(counts).length === 0
    ? '0'
    : Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');

/** Every table of the report, as text. */
export function formatSoakReport(result: SoakResult): string {
  const { options: o, plan, chat, notifications: n, table, memory: m, traffic: t } = result;
  const out: string[] = [];
  const section = (title: string, rows: TableRow[], columns?: readonly string[]) => {
    out.push('', title, formatTable(rows, columns));
  };

  section('run', [
    {
      connections: o.connections,
      websocket: plan.clients.websocket,
      'mqtt tcp': plan.clients['mqtt-tcp'],
      'mqtt ws': plan.clients['mqtt-ws'],
      'mqtt 3.1.1/5': `${plan.mqttVersions.v4}/${plan.mqttVersions.v5}`,
      rooms: Object.entries(plan.rooms)
        .map(([kind, r]) => `${r.rooms} ${kind}`)
        .join(', '),
      memberships: plan.memberships,
      'traffic s': s(result.phasesMs.traffic ?? 0),
      'total s': s(result.phasesMs.total ?? 0),
      seed: o.seed,
    },
  ]);
  section('phases (s)', [Object.fromEntries(Object.entries(result.phasesMs).map(([k, v]) => [k, s(v)]))]);
  section('load', [
    {
      'chat sends': t.chatSends,
      'chat/s': o.chatPerSecond,
      joins: t.churnJoins,
      leaves: t.churnLeaves,
      'churn/s': o.churnPerSecond,
      'notify calls': t.notifyCalls,
      'notify/s': o.notifyPerSecond,
      'notify retries': t.notifyRetries,
      heartbeats: t.heartbeats,
      'skipped ticks': sum(t.skipped),
      'connect s': s(result.ramp.connectMs),
      'join s': s(result.ramp.joinMs),
    },
  ]);
  section('chat delivery (member x message pairs)', [
    {
      'messages acked': chat.messages,
      resent: chat.resent,
      'dup acks': chat.duplicateAcks,
      required: chat.required,
      live: chat.deliveredLive,
      'via catch-up': chat.viaCatchUp,
      lost: chat.lost,
      duplicated: chat.duplicated,
      'live expected': chat.liveExpected,
      'missed live': chat.missedLive,
      'stored = acked': table.missing === 0 && table.unknown === 0 && table.storedTwice === 0 ? 'yes' : 'NO',
      'stored msgs': table.storedMessages,
      'unsubscribed memberships': result.subscriptions.missing,
    },
  ]);
  section('notifications (user x notification pairs)', [
    {
      recipients: n.recipients,
      live: n.deliveredLive,
      'live expected': n.liveExpected,
      'missed live': n.missedLive,
      'dup live': n.duplicatedLive,
      'in inbox once': n.recipients - n.missingFromInbox - n.duplicatedInInbox,
      'missing from inbox': n.missingFromInbox,
      'dup in inbox': n.duplicatedInInbox,
      unknown: n.unknown,
      'notify errors': t.notifyErrors,
      'retry mismatches': t.notifyRetryMismatches,
    },
  ]);
  if (result.storms.length > 0) {
    section(
      'reconnect storms',
      result.storms.map((storm, i) => ({
        storm: i + 1,
        mode: storm.mode,
        'at s': storm.atSeconds,
        dropped: storm.dropped.websocket + storm.dropped.mqtt,
        'all reconnected s': s(storm.allReconnectedMs),
        'all recovered s': s(storm.allRecoveredMs),
        'recover p50/p99 s': `${s(storm.recoveryMs.p50)}/${s(storm.recoveryMs.p99)}`,
        'not recovered': storm.notRecovered,
        attempts: storm.connectAttempts,
        refusals: sum(storm.refusals),
        'error frames': sum(storm.errorFrames),
        timeouts: storm.requestTimeouts,
        'catch-up msgs': storm.catchUpMessages,
        resent: storm.resentMessages,
        'emu loop p99 ms': storm.emulatorLoopDelayP99Ms,
        'emu RSS MiB': mib(storm.emulatorPeakRss),
      })),
    );
  }
  section(
    'emulator memory (MiB; after a full GC unless "peak")',
    [
      ['baseline (warm, idle)', m.baseline],
      ['after ramp', m.afterRamp],
      ['end, clients connected', m.endConnected],
      ['end, clients closed', m.end],
    ].map(([label, point]) => {
      const p = point as typeof m.baseline;
      return {
        point: label as string,
        heap: mib(p.heapUsed),
        rss: mib(p.rss),
        external: mib(p.external),
        resources: sum(p.resources),
      };
    }),
  );
  out.push(
    `  peak (periodic samples, no GC): heap ${mib(m.peak.heapUsed)} MiB, RSS ${mib(m.peak.rss)} MiB; ` +
      `growth end vs baseline: heap ${mib(m.heapGrowth)} MiB, RSS ${mib(m.rssGrowth)} MiB`,
    `  resources at the end above the baseline: ${listed(m.extraResources)} (settled ${s(m.resourcesSettledMs)} s after the clients closed)`,
    `  baseline resources: ${listed(m.baseline.resources)}`,
    `  heap after GC during the traffic (s: MiB): ${m.gcSeries.map((p) => `${p.t}: ${mib(p.heapUsed)}`).join(', ') || '-'}`,
    `  emulator CPU: ${result.emulatorCpuSeconds} s; load generator at the end of the traffic: heap ${mib(m.loadGenerator.heapUsed)} MiB, RSS ${mib(m.loadGenerator.rss)} MiB`,
  );
  const c = result.counters;
  out.push(
    '',
    'errors',
    `  failed connection attempts: ramp ${listed(result.ramp.refusals)}; later ${listed(c.refusals)} (refused by the service: ${sum(serviceRefusals(result.ramp.refusals)) + sum(serviceRefusals(c.refusals))}; the rest failed on the way: handshakes unanswered in 60 s, resets)`,
    `  error frames: ${listed(c.errorFrames)}; requests unanswered after 60 s ${c.requestTimeouts} (answered later ${c.lateAnswers}); unknown frames ${c.unknownFrames}; pushed errors ${c.pushedErrors}`,
    `  drops outside storms ${c.unexpectedDrops}; operation errors: ${listed(t.operationErrors)}`,
    `  emulator log lines (warn and above): ${result.logs.lines} unexpected${result.logs.lines > 0 ? ` (${listed(result.logs.byKind)})` : ''}; expected: ${listed(result.logs.expected)}`,
    `  presence frames ${c.presenceFrames}; stray chats ${c.strayChats}; catch-up messages ${c.catchUpMessages}`,
  );
  for (const line of result.logs.first.slice(0, 10)) out.push(`    | ${line}`);
  for (const example of [...chat.examples, ...n.examples, ...table.examples, ...result.subscriptions.examples].slice(
    0,
    20,
  ))
    out.push(`  ! ${example}`);
  out.push('', 'checks');
  for (const [name, ok] of Object.entries(result.checks)) out.push(`  ${ok ? 'ok    ' : 'FAILED'} ${name}`);
  return out.join('\n');
}
