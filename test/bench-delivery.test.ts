/**
 * The delivery cost benchmark's correctness figures (issue 7, item 2), in quick mode at latency 0: the real
 * core `send` with the real store and delivery, against dynalite and a fake `@connections` endpoint that
 * records every post. Speed is not asserted here; `npm run bench` reports it.
 */
import { describe, expect, it } from 'vitest';
import { type DeliveryCostResult, runDeliveryCost } from '../bench/delivery-cost.js';

describe('delivery cost bench (quick, latency 0)', () => {
  let result: DeliveryCostResult;

  it('runs rooms of 10 and 100', async () => {
    result = await runDeliveryCost({ quick: true, latencyMs: 0, wallRepeats: 1 });
    expect(result.rooms.map((r) => r.recipients)).toEqual([10, 100]);
  }, 120_000);

  it('posts exactly once per recipient per message', () => {
    for (const room of result.rooms) {
      expect(room.postsPerMessage, `room of ${room.recipients}`).toBe(room.recipients);
      expect(room.callsPerMessage['apigw:PostToConnection']).toBe(room.recipients);
    }
  });

  it('makes the same DynamoDB calls per message in rooms of 10 and 100', () => {
    const [small, large] = result.rooms;
    expect(small?.dynamodbCallsStable).toBe(true);
    expect(large?.dynamodbCallsStable).toBe(true);
    expect(small?.dynamodbCallsPerMessage).toBeGreaterThan(0);
    expect(large?.dynamodbCallsPerMessage).toBe(small?.dynamodbCallsPerMessage);
    const dynamodbOnly = (calls: Record<string, number> | undefined) =>
      Object.fromEntries(Object.entries(calls ?? {}).filter(([key]) => key.startsWith('dynamodb:')));
    expect(dynamodbOnly(large?.callsPerMessage)).toEqual(dynamodbOnly(small?.callsPerMessage));
  });

  it('delivered every message to every simulated recipient exactly once', () => {
    for (const room of result.rooms) {
      expect({ recipients: room.recipients, lost: room.lost, duplicated: room.duplicated }).toEqual({
        recipients: room.recipients,
        lost: 0,
        duplicated: 0,
      });
      expect(room.exactlyOnce).toBe(true);
    }
    expect(result.targets.exactlyOnce).toBe(true);
    expect(result.targets.postsEqualRecipients).toBe(true);
  });
});
