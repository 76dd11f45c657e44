/**
 * Load and soak (issue 8): N concurrent connections over both channels (WebSocket API, MQTT over TCP and over
 * WebSocket) in rooms of mixed sizes, chatting, joining and leaving, getting backend notifications, through
 * reconnect storms (everyone dropped at once and reconnecting at once); then every acknowledged message and
 * every notification is checked (delivered once, nothing lost, the table holds exactly what was
 * acknowledged), and the emulator's memory and active handles are compared with their warm baseline.
 * Everything runs on 127.0.0.1 with ephemeral ports; the emulator runs in a child process of its own, so its
 * heap, RSS and handles are its alone. The design: `bench/lib/soak/run.ts`; the checks: `verify.ts` there.
 *
 * Run: `npm run soak -- [--connections 2000] [--minutes 5 | --seconds S] [--mqtt-share 0.5]
 * [--mqtt-ws-share 0.25] [--seed N] [--storms 2] [--storm-modes server,client] [--chat-rate R]
 * [--churn-rate R] [--notify-rate R] [--rooms-per-user 2] [--store disk|memory] [--json out.json] [--no-write]
 * [--quick]`. The exit code is 1 when a correctness check failed, never because the machine is slow. A quick
 * form runs in the test suite (`test/reliability/load.test.ts`).
 */
import { writeFileSync } from 'node:fs';
import { type BenchArgs, machineInfo, parseBenchArgs, runAsScript, writeResult } from './lib/index.js';
import { soakOptionsFromArgs } from './lib/soak/options.js';
import { formatSoakReport } from './lib/soak/report.js';
import { runSoak } from './lib/soak/run.js';

/** JSON with NaN and infinities as null, as `writeResult` writes it. */
function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/** CLI entry: runs the soak, prints the report, writes the JSON; resolves whether every check held. */
export async function main(args: BenchArgs = parseBenchArgs()): Promise<boolean> {
  const options = soakOptionsFromArgs(args);
  const started = new Date();
  const result = await runSoak({
    ...options,
    progress: (line) => console.log(`[${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)} s] ${line}`),
  });
  console.log(formatSoakReport(result));
  const json = args.flags.json;
  if (typeof json === 'string') {
    writeFileSync(json, toJson({ name: 'soak', date: started.toISOString(), machine: machineInfo(), ...result }));
    console.log(`\n  result: ${json}`);
  }
  if (args.write) console.log(`  result: ${writeResult('soak', { ...result })}`);
  const failed = Object.entries(result.checks).filter(([, ok]) => !ok);
  if (failed.length > 0) console.error(`soak: ${failed.length} check(s) failed: ${failed.map(([k]) => k).join('; ')}`);
  return failed.length === 0;
}

runAsScript(import.meta.url, () => main());
