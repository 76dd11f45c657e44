/**
 * The deliveries' shared retry policy (src/delivery/retry.ts): throttling, 5xx and a connection that broke before
 * an answer are retried; anything else fails at once. Broken connections used to fail at once, and each was a frame
 * lost for its recipient (found by bench/soak.ts under load: "socket hang up", "read ECONNRESET").
 */
import { LIMITS } from '@viba-realtime/protocol';
import { describe, expect, it } from 'vitest';
import { DeliveryRetrier, isRetryable } from '../src/delivery/retry.js';
import { createLogger } from '../src/log.js';

/** An error shaped as the SDK's node HTTP handler throws it. */
function sdkError(name: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name, ...extra });
}

function retrier() {
  return new DeliveryRetrier({
    endpoint: 'http://127.0.0.1:1',
    region: 'us-east-1',
    log: createLogger('silent'),
    sleep: async () => {},
  });
}

describe('delivery retry policy', () => {
  it.each([
    ['socket hang up', sdkError('TimeoutError', 'socket hang up', { code: 'ECONNRESET' })],
    ['read ECONNRESET', sdkError('TimeoutError', 'read ECONNRESET')],
    ['EPIPE', sdkError('Error', 'write EPIPE', { code: 'EPIPE' })],
    ['503', sdkError('ServiceUnavailable', 'unavailable', { $metadata: { httpStatusCode: 503 } })],
    ['429', sdkError('LimitExceededException', 'slow down', { $metadata: { httpStatusCode: 429 } })],
  ])('retries %s and delivers on the next attempt', async (_name, error) => {
    let calls = 0;
    const outcome = await retrier().run(
      async () => {
        calls++;
        if (calls === 1) throw error;
      },
      () => false,
      {},
    );
    expect(outcome).toBe('delivered');
    expect(calls).toBe(2);
  });

  it('fails at once on an error that retrying cannot fix', async () => {
    let calls = 0;
    const forbidden = sdkError('ForbiddenException', 'no', { $metadata: { httpStatusCode: 403 } });
    const outcome = await retrier().run(
      async () => {
        calls++;
        throw forbidden;
      },
      () => false,
      {},
    );
    expect(outcome).toBe('failed');
    expect(calls).toBe(1);
    expect(isRetryable(new Error('a bug'))).toBe(false);
  });

  it('gives up after LIMITS.deliveryMaxAttempts broken connections', async () => {
    let calls = 0;
    const outcome = await retrier().run(
      async () => {
        calls++;
        throw sdkError('TimeoutError', 'socket hang up');
      },
      () => false,
      {},
    );
    expect(outcome).toBe('failed');
    expect(calls).toBe(LIMITS.deliveryMaxAttempts);
  });
});
