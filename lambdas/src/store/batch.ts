/**
 * BatchWriteItem with DynamoDB's rules applied: at most 25 requests per call, and the requests DynamoDB
 * hands back as unprocessed (throttling, partition limits) retried with backoff until none remain.
 */
import { BatchWriteCommand, type BatchWriteCommandInput, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UnprocessedItemsError } from './errors.js';

/** DynamoDB's limit of requests in one BatchWriteItem. */
export const BATCH_WRITE_MAX = 25;
const MAX_ATTEMPTS = 8;
const BACKOFF_BASE_MS = 20;
const BACKOFF_MAX_MS = 1_000;

type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];

/**
 * Deletes the given primary keys in batches of {@link BATCH_WRITE_MAX}, retrying unprocessed ones.
 * Deleting a key that does not exist is not an error, so this is idempotent.
 *
 * @throws {UnprocessedItemsError} when DynamoDB still returns unprocessed requests after every retry.
 */
export async function batchDelete(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, string>[],
): Promise<void> {
  await batchWrite(
    client,
    tableName,
    keys.map((key) => ({ DeleteRequest: { Key: key } })),
  );
}

/**
 * Runs write requests in batches of {@link BATCH_WRITE_MAX}, retrying unprocessed ones with full-jitter
 * backoff. One request per key: BatchWriteItem rejects a call that names the same key twice.
 */
export async function batchWrite(
  client: DynamoDBDocumentClient,
  tableName: string,
  requests: readonly WriteRequest[],
): Promise<void> {
  for (let start = 0; start < requests.length; start += BATCH_WRITE_MAX) {
    let pending: WriteRequest[] = requests.slice(start, start + BATCH_WRITE_MAX);
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > MAX_ATTEMPTS) throw new UnprocessedItemsError(pending.length);
      if (attempt > 1) {
        const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 2));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
      }
      const { UnprocessedItems } = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending } }));
      pending = UnprocessedItems?.[tableName] ?? [];
    }
  }
}
