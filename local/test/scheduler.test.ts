/**
 * The EventBridge schedule emulation on its own: runs by the timer and by `runDue` after the clock moves, never
 * overlapping, with EventBridge's event, a failure logged and the next period run again.
 */
import { TOKEN_SWEEPER_HANDLER } from '@viba-realtime/protocol';
import type { ScheduledEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEmulatorLogger } from '../src/log.js';
import { type LocalSchedule, LocalScheduler, UnknownScheduleError } from '../src/scheduler/local-scheduler.js';

let now = Date.UTC(2026, 10, 26, 3, 0, 0);
const clock = () => now;
const lines: string[] = [];
const logger = createEmulatorLogger({ level: 'info', log: (line) => lines.push(line), clock });
const schedulers: LocalScheduler[] = [];

function scheduler(schedule: Partial<LocalSchedule> & Pick<LocalSchedule, 'fn'>, paused = false): LocalScheduler {
  const created = new LocalScheduler({
    schedules: [{ handler: TOKEN_SWEEPER_HANDLER, rateMinutes: 1, ...schedule }],
    clock,
    logger,
    region: 'us-east-1',
    accountId: '000000000000',
    paused,
  });
  schedulers.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.close()));
  lines.length = 0;
});

describe('LocalScheduler', () => {
  it('invokes the function with the event EventBridge sends a scheduled rule target', async () => {
    const events: ScheduledEvent[] = [];
    const s = scheduler({ fn: async (event) => events.push(event) });
    await s.run(TOKEN_SWEEPER_HANDLER);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      version: '0',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '000000000000',
      region: 'us-east-1',
      time: '2026-11-26T03:00:00Z',
      resources: [`arn:aws:events:us-east-1:000000000000:rule/viba-realtime-${TOKEN_SWEEPER_HANDLER}`],
      detail: {},
    });
    expect(events[0]?.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('runs by its timer every period', async () => {
    let resolveRun: () => void = () => {};
    const ran = new Promise<void>((resolve) => {
      resolveRun = resolve;
    });
    // A period of 30 ms of real time, so the timer fires within the test; the clock here is real.
    const real = new LocalScheduler({
      schedules: [{ handler: TOKEN_SWEEPER_HANDLER, rateMinutes: 0.0005, fn: async () => resolveRun() }],
      clock: Date.now,
      logger,
      region: 'us-east-1',
      accountId: '000000000000',
    });
    schedulers.push(real);
    await ran;
    expect(real.runs(TOKEN_SWEEPER_HANDLER)).toBeGreaterThanOrEqual(1);
  });

  it('runDue runs what the moved clock made due, once however many periods passed, and not again until the next', async () => {
    let runs = 0;
    const s = scheduler({ fn: async () => ++runs });
    await s.runDue();
    expect(runs).toBe(0);
    now += 2 * 60 * 60 * 1000;
    await s.runDue();
    expect(runs).toBe(1);
    await s.runDue();
    expect(runs).toBe(1);
    now += 60_000;
    await s.runDue();
    expect(runs).toBe(2);
  });

  it('never overlaps two runs of one schedule', async () => {
    let inFlight = 0;
    let most = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const s = scheduler({
      fn: async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await gate;
        inFlight -= 1;
      },
    });
    const first = s.run(TOKEN_SWEEPER_HANDLER);
    const second = s.run(TOKEN_SWEEPER_HANDLER);
    now += 60_000;
    const due = s.runDue();
    release();
    await Promise.all([first, second, due]);
    expect(most).toBe(1);
    expect(s.runs(TOKEN_SWEEPER_HANDLER)).toBe(2);
  });

  it('a clock move during a run gets one more run after it, at the new time (the run in progress read the old one)', async () => {
    const times: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => {};
    const firstStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const s = scheduler({
      fn: async (event) => {
        times.push(event.time);
        if (times.length === 1) {
          started();
          await gate;
        }
        return times.length;
      },
    });
    const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
    const before = now - (now % 1000);
    const first = s.run(TOKEN_SWEEPER_HANDLER);
    await firstStarted;
    now += 3 * 60_000;
    const due = s.runDue();
    release();
    expect(await first).toBe(1);
    expect(await due).toEqual({ [TOKEN_SWEEPER_HANDLER]: 2 });
    expect(times).toEqual([iso(before), iso(before + 3 * 60_000)]);
  });

  it('a run longer than its period does not spin the timer while it runs', async () => {
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    // A 30 ms period on the real clock, and a run of 150 ms (its own work, not the test's wait).
    const real = new LocalScheduler({
      schedules: [
        {
          handler: TOKEN_SWEEPER_HANDLER,
          rateMinutes: 0.0005,
          fn: async () => {
            started();
            await new Promise((resolve) => setTimeout(resolve, 150));
          },
        },
      ],
      clock: Date.now,
      logger,
      region: 'us-east-1',
      accountId: '000000000000',
    });
    schedulers.push(real);
    const runDue = vi.spyOn(real, 'runDue');
    await running;
    await real.idle();
    // One timer call started the run; a spinning timer would have called runDue hundreds of times meanwhile.
    expect(runDue.mock.calls.length).toBeLessThanOrEqual(2);
    await real.close();
  });

  it('logs a failed run and runs again next period; run() hands the failure to its caller', async () => {
    let calls = 0;
    const s = scheduler({
      fn: async () => {
        calls += 1;
        if (calls === 1) throw new Error('table unavailable');
        return { closed: 0 };
      },
    });
    await expect(s.run(TOKEN_SWEEPER_HANDLER)).rejects.toThrow('table unavailable');
    expect(lines.some((line) => line.includes('token-sweeper failed: table unavailable'))).toBe(true);
    now += 60_000;
    await s.runDue();
    expect(calls).toBe(2);
  });

  it('writes an info line only when `describe` finds the answer worth one', async () => {
    let closed = 0;
    const s = scheduler({
      fn: async () => ({ closed }),
      describe: (answer) => ((answer as { closed: number }).closed > 0 ? `closed ${closed}` : undefined),
    });
    await s.run(TOKEN_SWEEPER_HANDLER);
    expect(lines).toEqual([]);
    closed = 2;
    await s.run(TOKEN_SWEEPER_HANDLER);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('token-sweeper: closed 2');
  });

  it('paused, runs only when asked', async () => {
    let runs = 0;
    const s = scheduler({ fn: async () => ++runs }, true);
    now += 60 * 60_000;
    await s.runDue();
    expect(runs).toBe(0);
    await s.run(TOKEN_SWEEPER_HANDLER);
    expect(runs).toBe(1);
  });

  it('refuses an unknown function and a period that is not positive', async () => {
    const s = scheduler({ fn: async () => undefined });
    // @ts-expect-error: not a scheduled function's name
    await expect(s.run('ws-routes-typo')).rejects.toBeInstanceOf(UnknownScheduleError);
    expect(() => scheduler({ fn: async () => undefined, rateMinutes: 0 })).toThrow(RangeError);
  });

  it('close waits for a run in progress and stops the timer', async () => {
    let finished = false;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const s = scheduler({
      fn: async () => {
        await gate;
        finished = true;
      },
    });
    const running = s.run(TOKEN_SWEEPER_HANDLER);
    const closing = s.close();
    release();
    await closing;
    expect(finished).toBe(true);
    await running;
    now += 60 * 60_000;
    await s.runDue();
    expect(s.runs(TOKEN_SWEEPER_HANDLER)).toBe(1);
  });
});
