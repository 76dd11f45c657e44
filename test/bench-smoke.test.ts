/**
 * Smoke test of the WebSocket fan-out benchmark (bench/ws-fanout.ts) in quick mode: it checks that the
 * benchmark works and that both the emulator and the raw `ws` baseline deliver every message exactly once.
 * It asserts correctness only, never speed: a slow machine must not fail it.
 */
import { describe, expect, it } from 'vitest';
import { resolveWsFanoutOptions, runWsFanout, wsFanoutCorrect } from '../bench/ws-fanout.js';

describe('bench ws-fanout (quick)', () => {
  it('delivers clients x messages to every target, none lost, none duplicated', async () => {
    const options = resolveWsFanoutOptions({ quick: true });
    const result = await runWsFanout({ quick: true });
    for (const m of [result.emulator, result.baseline]) {
      expect(m).toBeDefined();
      if (!m) continue;
      expect(m.messagesSent, m.target).toBe(options.messages);
      expect(m.timedOut, m.target).toBe(false);
      expect(m.expected, m.target).toBe(options.clients * options.messages);
      expect(m.delivered, m.target).toBe(options.clients * options.messages);
      expect(m.lost, m.target).toBe(0);
      expect(m.duplicated, m.target).toBe(0);
      expect(m.errors, m.target).toBe(0);
      expect(m.latencyMs.count, m.target).toBe(m.delivered);
    }
    expect(result.targets?.noLossNoDuplicates).toBe(true);
    expect(wsFanoutCorrect(result)).toBe(true);
  }, 120_000);
});
