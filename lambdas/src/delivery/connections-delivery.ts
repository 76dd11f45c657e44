/**
 * {@link Delivery} over API Gateway's `@connections` management API, under the shared retry policy
 * (./retry.ts): 429 and 5xx are retried with full-jitter backoff, 410 means the connection is gone.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { ServerFrame } from '@viba-realtime/protocol';
import type { Delivery, DeliveryOutcome, DeliveryTarget } from '../core/ports.js';
import { type DeliveryClientOptions, DeliveryRetrier, deliveryClientConfig, httpStatus } from './retry.js';

export { httpStatus, isRetryable } from './retry.js';

const encoder = new TextEncoder();

function isGone(error: unknown): boolean {
  return (error as { name?: string })?.name === 'GoneException' || httpStatus(error) === 410;
}

/** Options of {@link ConnectionsDelivery}; `endpoint` is `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`
 * or the emulator's `http://127.0.0.1:4000/local`. */
export type ConnectionsDeliveryOptions = DeliveryClientOptions;

export class ConnectionsDelivery implements Delivery {
  readonly client: ApiGatewayManagementApiClient;
  readonly #retrier: DeliveryRetrier;

  constructor(options: ConnectionsDeliveryOptions) {
    this.client = new ApiGatewayManagementApiClient(deliveryClientConfig(options));
    this.#retrier = new DeliveryRetrier(options);
  }

  post({ connectionId }: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    const data = encoder.encode(JSON.stringify(frame));
    return this.#retrier.run(
      () => this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data })),
      isGone,
      { connectionId },
    );
  }

  async close(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (!isGone(error)) throw error;
    }
  }
}
