/**
 * The retry policy every delivery adapter shares. Retries are ours, not the SDK's (clients are built with
 * `maxAttempts: 1`), so the policy is explicit and the same for each AWS service: throttling, 5xx and broken
 * connections are retried with full-jitter backoff, anything else fails at once.
 */
import { LIMITS } from '@viba-realtime/protocol';
import { fullJitterDelay } from '../core/concurrency.js';
import type { DeliveryOutcome } from '../core/ports.js';
import type { Logger } from '../log.js';

/** Options every delivery adapter takes. */
export interface DeliveryClientOptions {
  /** The service endpoint (AWS's, or the emulator's). */
  endpoint: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  log: Logger;
  /** @default LIMITS.deliveryMaxAttempts */
  maxAttempts?: number;
  /** Injected so tests need not wait for real backoff. @default setTimeout-based sleep */
  sleep?: (ms: number) => Promise<void>;
}

/** SDK client settings every delivery adapter uses. */
export function deliveryClientConfig(options: DeliveryClientOptions) {
  return {
    endpoint: options.endpoint,
    region: options.region,
    maxAttempts: 1,
    // One resolved middleware stack for every call, not one per call (see bench/delivery-cost.ts).
    cacheMiddleware: true,
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
}

/** HTTP status of an SDK v3 error (`$metadata.httpStatusCode`; SDK v3 has no `statusCode`). */
export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** Node socket errors the SDK's own retry strategy counts as transient (it names them `TimeoutError`). */
const TRANSIENT_SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/**
 * Whether an SDK v3 error is worth retrying: throttling, a server error, or a connection that broke before an
 * answer (a pooled keep-alive socket the server had just closed: "socket hang up", "read ECONNRESET"). Those
 * failed at once before, and each was a frame lost for its recipient; bench/soak.ts found them under load.
 * Retrying one whose request did arrive can deliver a frame twice, which clients drop by the frame's id.
 */
export function isRetryable(error: unknown): boolean {
  const status = httpStatus(error);
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown };
  return (
    name === 'LimitExceededException' ||
    name === 'ThrottlingException' ||
    name === 'InternalServerErrorException' ||
    name === 'TimeoutError' ||
    (typeof code === 'string' && TRANSIENT_SOCKET_CODES.has(code)) ||
    status === 429 ||
    (status !== undefined && status >= 500)
  );
}

/** Runs one delivery call under the retry policy. */
export class DeliveryRetrier {
  readonly #log: Logger;
  readonly #maxAttempts: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: DeliveryClientOptions) {
    this.#log = options.log;
    this.#maxAttempts = options.maxAttempts ?? LIMITS.deliveryMaxAttempts;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * @param call - one attempt
   * @param isGone - errors meaning the recipient no longer exists (answered `gone`, never retried)
   * @param context - logged with a final failure
   */
  async run(
    call: () => Promise<unknown>,
    isGone: (error: unknown) => boolean,
    context: Record<string, unknown>,
  ): Promise<DeliveryOutcome> {
    for (let attempt = 0; ; attempt++) {
      try {
        await call();
        return 'delivered';
      } catch (error) {
        if (isGone(error)) return 'gone';
        if (!isRetryable(error) || attempt + 1 >= this.#maxAttempts) {
          this.#log.warn('delivery failed', { ...context, attempts: attempt + 1, error });
          return 'failed';
        }
        await this.#sleep(fullJitterDelay(attempt, LIMITS.deliveryBackoffBaseMs, LIMITS.deliveryBackoffMaxMs));
      }
    }
  }
}
