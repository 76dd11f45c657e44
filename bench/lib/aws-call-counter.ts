/**
 * Counts AWS calls by operation name with an SDK v3 middleware, so a benchmark measures what AWS bills:
 * one count per HTTP attempt (the middleware sits in the `deserialize` step, after the SDK's retry
 * middleware, so a retried call counts once per attempt).
 *
 * @example
 * const counter = new AwsCallCounter();
 * counter.attach(documentClient, 'dynamodb');
 * counter.attach(delivery.client, 'apigw');
 * const before = counter.snapshot();
 * await send(deps, caller, frame);
 * const perMessage = AwsCallCounter.diff(before, counter.snapshot()); // { 'dynamodb:GetItem': 1, ... }
 */

/** Operation name -> number of calls. Keys are `service:Operation` (e.g. `dynamodb:PutItem`). */
export type CallCounts = Record<string, number>;

/** The part of an SDK v3 client the counter needs (any client, any document client). */
export interface MiddlewareClient {
  middlewareStack: {
    add(
      middleware: (
        next: (args: never) => Promise<unknown>,
        context: { commandName?: string; clientName?: string },
      ) => (args: never) => Promise<unknown>,
      options: { step: 'deserialize'; name: string; priority?: 'low' | 'normal' | 'high'; override?: boolean },
    ): void;
  };
}

const MIDDLEWARE_NAME = 'vibaBenchAwsCallCounter';

export class AwsCallCounter {
  readonly #counts = new Map<string, number>();

  /** Counts every call the client makes from now on under `service:Operation`. Attaching twice is harmless. */
  attach(client: MiddlewareClient, service: string): void {
    client.middlewareStack.add(
      (next, context) => (args) => {
        const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        const key = `${service}:${operation}`;
        this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
        return next(args);
      },
      { step: 'deserialize', name: MIDDLEWARE_NAME, priority: 'low', override: true },
    );
  }

  /** The counts so far (a copy). */
  snapshot(): CallCounts {
    return Object.fromEntries(this.#counts);
  }

  reset(): void {
    this.#counts.clear();
  }

  /** What happened between two snapshots (zero counts left out). */
  static diff(before: CallCounts, after: CallCounts): CallCounts {
    const out: CallCounts = {};
    for (const [key, value] of Object.entries(after)) {
      const delta = value - (before[key] ?? 0);
      if (delta !== 0) out[key] = delta;
    }
    return out;
  }

  /** Sum of the counts whose key starts with `service:`. */
  static total(counts: CallCounts, service: string): number {
    let sum = 0;
    for (const [key, value] of Object.entries(counts)) if (key.startsWith(`${service}:`)) sum += value;
    return sum;
  }
}
