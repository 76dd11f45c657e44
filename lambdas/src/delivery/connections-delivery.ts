/**
 * {@link Delivery} over API Gateway's `@connections` management API. Retries are ours, not the SDK's
 * (the client is built with `maxAttempts: 1`), so that the policy is explicit and the same for every
 * error: 429 and 5xx are retried with full-jitter backoff, 410 means the connection is gone.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { LIMITS, type ServerFrame } from '@viba-realtime/protocol';
import { fullJitterDelay } from '../core/concurrency.js';
import type { Delivery, DeliveryOutcome, DeliveryTarget } from '../core/ports.js';
import type { Logger } from '../log.js';

const encoder = new TextEncoder();

/** HTTP status of an SDK v3 error (`$metadata.httpStatusCode`; SDK v3 has no `statusCode`). */
export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isGone(error: unknown): boolean {
  return (error as { name?: string })?.name === 'GoneException' || httpStatus(error) === 410;
}

/** Whether an SDK v3 error is worth retrying: throttling or a server error. */
export function isRetryable(error: unknown): boolean {
  const status = httpStatus(error);
  const name = (error as { name?: string })?.name;
  return (
    name === 'LimitExceededException' ||
    name === 'ThrottlingException' ||
    name === 'InternalServerErrorException' ||
    status === 429 ||
    (status !== undefined && status >= 500)
  );
}

export interface ConnectionsDeliveryOptions {
  /** `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or the emulator's `http://127.0.0.1:4000/local`. */
  endpoint: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  log: Logger;
  /** @default LIMITS.deliveryMaxAttempts */
  maxAttempts?: number;
  /** Injected so tests need not wait for real backoff. @default setTimeout-based sleep */
  sleep?: (ms: number) => Promise<void>;
}

export class ConnectionsDelivery implements Delivery {
  readonly client: ApiGatewayManagementApiClient;
  readonly #log: Logger;
  readonly #maxAttempts: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: ConnectionsDeliveryOptions) {
    this.client = new ApiGatewayManagementApiClient({
      endpoint: options.endpoint,
      region: options.region,
      maxAttempts: 1,
      // One resolved middleware stack for every post, not one per call (see bench/delivery-cost.ts).
      cacheMiddleware: true,
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    this.#log = options.log;
    this.#maxAttempts = options.maxAttempts ?? LIMITS.deliveryMaxAttempts;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async post({ connectionId }: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    const data = encoder.encode(JSON.stringify(frame));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
        return 'delivered';
      } catch (error) {
        if (isGone(error)) return 'gone';
        if (!isRetryable(error) || attempt + 1 >= this.#maxAttempts) {
          this.#log.warn('post to connection failed', { connectionId, attempts: attempt + 1, error });
          return 'failed';
        }
        await this.#sleep(fullJitterDelay(attempt, LIMITS.deliveryBackoffBaseMs, LIMITS.deliveryBackoffMaxMs));
      }
    }
  }

  async close(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (!isGone(error)) throw error;
    }
  }
}
