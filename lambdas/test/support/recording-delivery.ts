/** A `Delivery` for core tests: records every post and close; connections in `gone` answer 410. */
import type { ServerFrame } from '@viba-realtime/protocol';
import type { Delivery, DeliveryOutcome, DeliveryTarget } from '../../src/core/ports.js';

export class RecordingDelivery implements Delivery {
  readonly posts: { connectionId: string; frame: ServerFrame }[] = [];
  readonly closed: string[] = [];
  /** Connection ids that answer `gone` (API Gateway's 410), as a client that vanished without a close. */
  readonly gone = new Set<string>();

  async post({ connectionId }: DeliveryTarget, frame: ServerFrame): Promise<DeliveryOutcome> {
    if (this.gone.has(connectionId)) return 'gone';
    this.posts.push({ connectionId, frame });
    return 'delivered';
  }

  async close(connectionId: string): Promise<void> {
    this.closed.push(connectionId);
  }
}
