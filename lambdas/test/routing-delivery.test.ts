/** The two-channel delivery: routing by connection id, and one MQTT publish per user per frame. */
import type { ServerFrame } from '@viba-realtime/protocol';
import { describe, expect, it } from 'vitest';
import type { Delivery, DeliveryOutcome, DeliveryTarget } from '../src/core/ports.js';
import { RoutingDelivery } from '../src/delivery/routing-delivery.js';
import { createLogger } from '../src/log.js';

class RecordingDelivery implements Delivery {
  readonly posts: { target: DeliveryTarget; frame: ServerFrame }[] = [];
  readonly closed: string[] = [];
  constructor(readonly outcome: DeliveryOutcome = 'delivered') {}
  async post(target: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    this.posts.push({ target, frame });
    return this.outcome;
  }
  async close(connectionId: string): Promise<void> {
    this.closed.push(connectionId);
  }
}

const log = createLogger('silent');
const chat = (seq: number): ServerFrame => ({
  type: 'chat',
  id: `m${seq}`,
  room: 'r',
  from: 'x',
  seq,
  ts: 0,
  body: {},
  ref: `c${seq}`,
});

function setup(mqttOutcome: DeliveryOutcome = 'delivered') {
  const websocket = new RecordingDelivery('gone');
  const mqtt = new RecordingDelivery(mqttOutcome);
  return { websocket, mqtt, routing: new RoutingDelivery({ websocket, mqtt, log }) };
}

describe('RoutingDelivery', () => {
  it('routes mqtt: targets to IoT and every other target to @connections', async () => {
    const { websocket, mqtt, routing } = setup();
    const frame = chat(1);
    expect(await routing.post({ connectionId: 'abc=', sub: 'a' }, frame)).toBe('gone');
    expect(await routing.post({ connectionId: 'mqtt:b.1', sub: 'b' }, frame)).toBe('delivered');
    expect(websocket.posts.map((p) => p.target.connectionId)).toEqual(['abc=']);
    expect(mqtt.posts.map((p) => p.target.connectionId)).toEqual(['mqtt:b.1']);
    await routing.close('mqtt:b.1');
    await routing.close('abc=');
    expect(mqtt.closed).toEqual(['mqtt:b.1']);
    expect(websocket.closed).toEqual(['abc=']);
  });

  it('publishes a frame once per MQTT user, sharing the outcome with their other connections', async () => {
    const { mqtt, routing } = setup('failed');
    const frame = chat(1);
    const outcomes = await Promise.all([
      routing.post({ connectionId: 'mqtt:b.1', sub: 'b' }, frame),
      routing.post({ connectionId: 'mqtt:b.2', sub: 'b' }, frame),
      routing.post({ connectionId: 'mqtt:c.1', sub: 'c' }, frame),
      routing.post({ connectionId: 'mqtt:b.3', sub: 'b' }, frame),
    ]);
    expect(outcomes).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(mqtt.posts.map((p) => p.target.sub)).toEqual(['b', 'c']);
  });

  it('publishes each new frame again, even with equal content', async () => {
    const { mqtt, routing } = setup();
    await routing.post({ connectionId: 'mqtt:b.1', sub: 'b' }, chat(1));
    await routing.post({ connectionId: 'mqtt:b.2', sub: 'b' }, chat(1));
    await routing.post({ connectionId: 'mqtt:b.1', sub: 'b' }, chat(2));
    expect(mqtt.posts.map((p) => (p.frame as { seq: number }).seq)).toEqual([1, 1, 2]);
  });

  it('fails MQTT targets without an IoT endpoint instead of reporting them gone', async () => {
    const websocket = new RecordingDelivery();
    const routing = new RoutingDelivery({ websocket, mqtt: undefined, log });
    expect(await routing.post({ connectionId: 'mqtt:b.1', sub: 'b' }, chat(1))).toBe('failed');
    expect(websocket.posts).toEqual([]);
  });
});
