/**
 * Smoke test of the fan-out benchmarks (bench/ws-fanout.ts, bench/mqtt-fanout.ts) in quick mode: it checks
 * that each benchmark works and that the emulator and the baselines deliver every message exactly once; and
 * of the cost model (bench/cost.ts): its call counts are consistent and it prices them.
 * It asserts correctness only, never speed: a slow machine must not fail it.
 */
import { CLIENT_DEFAULTS } from '@viba-realtime/client';
import { describe, expect, it } from 'vitest';
import { ASSUMPTIONS, runCost } from '../bench/cost.js';
import { MQTT_SCENARIOS, mqttFanoutCorrect, resolveMqttFanoutOptions, runMqttFanout } from '../bench/mqtt-fanout.js';
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

describe('bench mqtt-fanout (quick)', () => {
  it('delivers subscribers x messages in every scenario, none lost, none duplicated', async () => {
    const options = resolveMqttFanoutOptions({ quick: true });
    const result = await runMqttFanout({ quick: true });
    for (const scenario of MQTT_SCENARIOS) {
      const m = result.measurements[scenario];
      expect(m, scenario).toBeDefined();
      if (!m) continue;
      expect(m.messagesSent, scenario).toBe(options.messages);
      expect(m.delivered, scenario).toBe(options.clients * options.messages);
      expect(m.lost, scenario).toBe(0);
      expect(m.duplicated, scenario).toBe(0);
      expect(m.errors, scenario).toBe(0);
      expect(m.publishErrors, scenario).toBe(0);
      expect(m.latencyMs.count, scenario).toBe(m.delivered);
    }
    expect(mqttFanoutCorrect(result)).toBe(true);
  }, 120_000);
});

describe('bench cost (quick)', () => {
  it('counts one post per recipient connection and one IoT publish per recipient user, and prices them', async () => {
    const result = await runCost({ quick: true });
    expect(result.checks).toEqual(Object.fromEntries(Object.keys(result.checks).map((k) => [k, true])));
    const ws = result.chat.find((s) => s.channel === 'websocket' && s.members === 10);
    const mqtt = result.chat.find((s) => s.channel === 'mqtt' && s.members === 10);
    expect({ posts: ws?.posts, dynamodb: ws?.dynamodbCalls, sqs: ws?.sqsCalls }).toEqual({
      posts: 9,
      dynamodb: 7,
      sqs: 0,
    });
    expect({ room: mqtt?.roomPublishes, answers: mqtt?.answerPublishes }).toEqual({ room: 9, answers: 1 });
    for (const s of result.chat) expect(s.totalPerMillion, s.name).toBeGreaterThan(0);
    expect(result.connections.websocket.total).toBeGreaterThan(0);
    expect(result.connections.mqtt.total).toBeGreaterThan(0);
    // The connection model's client timings are the SDK's defaults.
    expect(ASSUMPTIONS.connections.heartbeatMinutes * 60_000).toBe(CLIENT_DEFAULTS.heartbeatIntervalMs);
    expect(ASSUMPTIONS.connections.refreshMarginMinutes * 60_000).toBe(CLIENT_DEFAULTS.refreshMarginMs);
  }, 120_000);
});
