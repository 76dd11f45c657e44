/**
 * What AWS bills beyond the call counts of `aws-call-counter.ts`, measured on SDK v3 clients with middleware:
 *
 * - {@link DynamoDbCapacityMeter}: DynamoDB capacity units per operation. Every call is sent with
 *   `ReturnConsumedCapacity: 'TOTAL'` and the table's units are read from the answer (dynalite reports them
 *   for GetItem, PutItem, UpdateItem, DeleteItem, BatchWriteItem and Query, with DynamoDB's rounding: 1 KB per
 *   write unit, 4 KB per read unit, half for eventually consistent reads). What dynalite leaves out is added
 *   here: the write units of the global secondary indexes (an item written into, changed in or removed from an
 *   index costs one more write of its size, two when its index key changes), the minimum of a read that finds
 *   nothing, and failed conditional writes (billed on AWS, an error without units on dynalite). The index
 *   units need the item before and after each write: a second, uncounted client reads them ("shadow" reads),
 *   so meter in a pass of its own, not while timing CPU ({@link DynamoDbCapacityMeter.enabled}).
 *   It also sums the storage the new items hold until their TTL, for a storage estimate.
 * - {@link RoundTripTracker}: AWS calls on the critical path, i.e. calls started while no other call of the
 *   tracked clients was in flight. A send's seven sequential DynamoDB calls are seven; a fan-out of 1,000
 *   concurrent posts is one. Lambda bills wall time, and this is the number of network waits in it.
 *
 * @example
 * const meter = new DynamoDbCapacityMeter({ shadow: otherDocumentClient, tableName, indexes: [['gsi1pk', 'gsi1sk']],
 *   keys: ['pk', 'sk'], ttlAttribute: 'ttl' });
 * meter.attach(documentClient);
 * const before = meter.snapshot();
 * await send(deps, caller, frame);
 * const units = DynamoDbCapacityMeter.diff(before, meter.snapshot()); // { 'write:PutItem': 2, 'read:Query': 1, ... }
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';

/** Counts by key (see each class for its keys). */
export type UsageCounts = Record<string, number>;

type Handler = (args: never) => Promise<unknown>;

/** The part of an SDK v3 client the middleware needs. */
export interface InitializeStackClient {
  middlewareStack: {
    add(
      middleware: (next: Handler, context: { commandName?: string }) => Handler,
      options: { step: 'initialize'; name: string; priority?: 'low' | 'normal' | 'high'; override?: boolean },
    ): void;
  };
}

type Item = Record<string, unknown>;

const encoder = new TextEncoder();

function numberSize(value: number | bigint): number {
  // DynamoDB: 1 byte per two significant digits, plus 1 (leading and trailing zeroes trimmed).
  const digits = String(value)
    .replace(/^-/, '')
    .replace(/e.*$/i, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** The size DynamoDB bills for a value of the document client's (unmarshalled) form, in bytes. */
export function dynamoValueSize(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return encoder.encode(value).length;
  if (typeof value === 'number' || typeof value === 'bigint') return numberSize(value);
  if (value instanceof Uint8Array) return value.length;
  if (value instanceof Set) {
    let sum = 0;
    for (const v of value) sum += dynamoValueSize(v);
    return sum;
  }
  if (Array.isArray(value)) return 3 + value.reduce<number>((sum, v) => sum + 1 + dynamoValueSize(v), 0);
  if (typeof value === 'object') return 3 + dynamoItemSize(value as Item) + Object.keys(value).length;
  return 0;
}

/** The size DynamoDB bills for an item (attribute names plus values), in bytes. */
export function dynamoItemSize(item: Item): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += encoder.encode(name).length + dynamoValueSize(value);
  }
  return size;
}

/** Options of {@link DynamoDbCapacityMeter}. */
export interface CapacityMeterOptions {
  /** A document client on the same table that is *not* metered or counted (reads items before and after). */
  shadow: DynamoDBDocumentClient;
  tableName: string;
  /** Table key attribute names: [partition, sort]. */
  keys: readonly [string, string];
  /** Key attribute names of each global secondary index: [partition, sort]. Projection ALL is assumed. */
  indexes: readonly (readonly [string, string])[];
  /** The TTL attribute (epoch seconds), for the storage estimate. */
  ttlAttribute: string;
}

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);
const KB = 1024;
const GIB = 2 ** 30;
const MONTH_SECONDS = (365.25 / 12) * 24 * 3600;
/** DynamoDB's storage overhead per item (and per index entry). */
const ITEM_OVERHEAD_BYTES = 100;

interface ConsumedCapacity {
  CapacityUnits?: number;
}

/**
 * DynamoDB capacity units per operation. Keys: `read:{Op}`, `write:{Op}` (table), `indexWrite:{Op}` (GSIs),
 * `failedWrite:{Op}` (conditional writes refused, billed on the item's size), and `storageGbMonths`: the
 * GB-months (GiB, with DynamoDB's 100 bytes of overhead per item and index entry) that the items created so far hold until their TTL (items without TTL are not included).
 */
export class DynamoDbCapacityMeter {
  readonly #options: CapacityMeterOptions;
  readonly #counts = new Map<string, number>();
  /** When false, calls pass through untouched (no capacity requested, no shadow reads). */
  enabled = true;

  constructor(options: CapacityMeterOptions) {
    this.#options = options;
  }

  #add(key: string, value: number): void {
    if (value !== 0) this.#counts.set(key, (this.#counts.get(key) ?? 0) + value);
  }

  attach(client: InitializeStackClient): void {
    client.middlewareStack.add(
      (next, context) => async (raw: never) => {
        if (!this.enabled) return next(raw);
        const args = raw as { input: Item };
        const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        const input: Item = { ...args.input, ReturnConsumedCapacity: 'TOTAL' };
        const writes = WRITES.has(operation) ? await this.#before(operation, input) : [];
        let result: { output?: { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] } };
        try {
          result = (await next({ ...args, input } as never)) as typeof result;
        } catch (error) {
          if ((error as { name?: string }).name === 'ConditionalCheckFailedException') {
            const [write] = writes;
            const size = Math.max(
              write?.old ? dynamoItemSize(write.old) : 0,
              write?.new ? dynamoItemSize(write.new) : 0,
            );
            this.#add(`failedWrite:${operation}`, Math.max(1, Math.ceil(size / KB)));
          }
          throw error;
        }
        const consumed = result.output?.ConsumedCapacity;
        const units = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce(
          (sum, c) => sum + (c.CapacityUnits ?? 0),
          0,
        );
        if (WRITES.has(operation)) {
          this.#add(`write:${operation}`, units);
          await this.#after(operation, writes);
        } else {
          // A read that finds nothing still costs the minimum: 1 unit, half when eventually consistent.
          const minimum = input.ConsistentRead === true ? 1 : 0.5;
          this.#add(`read:${operation}`, Math.max(units, minimum));
        }
        return result;
      },
      { step: 'initialize', name: 'vibaBenchCapacityMeter', priority: 'high', override: true },
    );
  }

  #keyOf(item: Item): Item {
    const [pk, sk] = this.#options.keys;
    return { [pk]: item[pk], [sk]: item[sk] };
  }

  async #read(key: Item): Promise<Item | undefined> {
    const { Item: item } = await this.#options.shadow.send(
      new GetCommand({ TableName: this.#options.tableName, Key: key, ConsistentRead: true }),
    );
    return item;
  }

  /** The items a write touches, with their state before it (and the new state, when the input has it). */
  async #before(operation: string, input: Item): Promise<{ key: Item; old?: Item; new?: Item }[]> {
    const touched: { key: Item; new?: Item }[] = [];
    if (operation === 'PutItem') {
      const item = input.Item as Item;
      touched.push({ key: this.#keyOf(item), new: item });
    } else if (operation === 'UpdateItem' || operation === 'DeleteItem') {
      touched.push({ key: input.Key as Item });
    } else if (operation === 'BatchWriteItem') {
      const requests = (input.RequestItems as Record<string, Item[]> | undefined)?.[this.#options.tableName] ?? [];
      for (const request of requests) {
        const put = request.PutRequest as { Item: Item } | undefined;
        const del = request.DeleteRequest as { Key: Item } | undefined;
        if (put) touched.push({ key: this.#keyOf(put.Item), new: put.Item });
        else if (del) touched.push({ key: del.Key });
      }
    }
    return Promise.all(touched.map(async (t) => ({ ...t, old: await this.#read(t.key) })));
  }

  async #after(operation: string, writes: { key: Item; old?: Item; new?: Item }[]): Promise<void> {
    const now = Date.now() / 1000;
    for (const write of writes) {
      const after = operation === 'UpdateItem' ? await this.#read(write.key) : write.new;
      for (const [pk, sk] of this.#options.indexes) {
        const inIndex = (item: Item | undefined): item is Item => item?.[pk] !== undefined && item[sk] !== undefined;
        const units = (item: Item) => Math.max(1, Math.ceil(dynamoItemSize(item) / KB));
        const was = inIndex(write.old) ? write.old : undefined;
        const is = inIndex(after) ? after : undefined;
        let indexUnits = 0;
        if (was && is) {
          if (was[pk] !== is[pk] || was[sk] !== is[sk]) indexUnits = units(was) + units(is);
          else if (JSON.stringify(was) !== JSON.stringify(is)) {
            indexUnits = Math.max(units(was), units(is));
          }
        } else if (was) indexUnits = units(was);
        else if (is) indexUnits = units(is);
        this.#add(`indexWrite:${operation}`, indexUnits);
      }
      // Storage: only items this write created, until their TTL.
      if (write.old === undefined && after !== undefined) {
        const ttl = after[this.#options.ttlAttribute];
        if (typeof ttl === 'number' && ttl > now) {
          const copies =
            1 + this.#options.indexes.filter(([pk, sk]) => after[pk] !== undefined && after[sk] !== undefined).length;
          const bytes = copies * (dynamoItemSize(after) + ITEM_OVERHEAD_BYTES);
          this.#add('storageGbMonths', (bytes / GIB) * ((ttl - now) / MONTH_SECONDS));
        }
      }
    }
  }

  snapshot(): UsageCounts {
    return Object.fromEntries(this.#counts);
  }

  static diff(before: UsageCounts, after: UsageCounts): UsageCounts {
    const out: UsageCounts = {};
    for (const [key, value] of Object.entries(after)) {
      const delta = value - (before[key] ?? 0);
      if (Math.abs(delta) > 1e-12) out[key] = delta;
    }
    return out;
  }

  /** Sum of the counts whose key starts with `prefix:` (e.g. `read`, `write`, `indexWrite`). */
  static total(counts: UsageCounts, prefix: string): number {
    let sum = 0;
    for (const [key, value] of Object.entries(counts)) if (key.startsWith(`${prefix}:`)) sum += value;
    return sum;
  }
}

/**
 * Counts the AWS calls on the critical path: a call started while no call of any tracked client was in
 * flight. Attach it to every client of the code under test.
 */
export class RoundTripTracker {
  #inFlight = 0;
  #roundTrips = 0;

  attach(client: InitializeStackClient): void {
    client.middlewareStack.add(
      (next) => async (args: never) => {
        if (this.#inFlight === 0) this.#roundTrips += 1;
        this.#inFlight += 1;
        try {
          return await next(args);
        } finally {
          this.#inFlight -= 1;
        }
      },
      { step: 'initialize', name: 'vibaBenchRoundTrips', priority: 'high', override: true },
    );
  }

  /** Round trips so far. */
  get roundTrips(): number {
    return this.#roundTrips;
  }
}
