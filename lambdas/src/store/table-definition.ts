/**
 * The table as the store needs it, derived only from {@link TABLE}: the CDK stack, the emulator and the
 * tests create the same table, so no layout detail is written twice.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type TableDescription,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLE } from '@viba-realtime/protocol';

/** How long {@link ensureTable} waits for a new table to become ACTIVE. Real DynamoDB takes seconds. */
const ACTIVE_TIMEOUT_MS = 120_000;
const ACTIVE_POLL_MS = 250;

/**
 * The CreateTable request for our single table: on-demand billing, string `pk`/`sk`, and the generic
 * inverted index `gsi1` (string `gsi1pk`/`gsi1sk`, all attributes projected).
 *
 * @example
 * await client.send(new CreateTableCommand(createTableInput('viba-realtime')));
 */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const gsi1 = TABLE.indexes.gsi1;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: TABLE.partitionKey, AttributeType: 'S' },
      { AttributeName: TABLE.sortKey, AttributeType: 'S' },
      { AttributeName: gsi1.partitionKey, AttributeType: 'S' },
      { AttributeName: gsi1.sortKey, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: gsi1.name,
        KeySchema: [
          { AttributeName: gsi1.partitionKey, KeyType: 'HASH' },
          { AttributeName: gsi1.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

async function describe(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return Table;
  } catch (error) {
    if (errorName(error) === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

function isActive(table: TableDescription | undefined): boolean {
  if (table?.TableStatus !== 'ACTIVE') return false;
  return (table.GlobalSecondaryIndexes ?? []).every(
    (index) => index.IndexStatus === undefined || index.IndexStatus === 'ACTIVE',
  );
}

/**
 * Makes sure the table exists and is ACTIVE (indexes included), creating it from {@link createTableInput}
 * if it is missing, and enables TTL on {@link TABLE.ttlAttribute}. Safe to run concurrently: a racing
 * creator's ResourceInUseException is treated as success. Emulators that cannot enable TTL (dynalite has no
 * UpdateTimeToLive) are tolerated silently; the store filters expired items on read anyway.
 *
 * @example
 * await ensureTable(new DynamoDBClient({ endpoint: 'http://127.0.0.1:8000', region: 'us-east-1' }), 'viba');
 */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  let table = await describe(client, tableName);
  if (table === undefined) {
    try {
      await client.send(new CreateTableCommand(createTableInput(tableName)));
    } catch (error) {
      if (errorName(error) !== 'ResourceInUseException') throw error;
    }
    table = await describe(client, tableName);
  }
  // Polling is the only way: DynamoDB has no "table became active" event. The SDK's waiter would first
  // sleep its 20 s minimum delay, far too long for an emulator that creates tables instantly.
  const deadline = Date.now() + ACTIVE_TIMEOUT_MS;
  while (!isActive(table)) {
    if (Date.now() > deadline) {
      throw new Error(`Table "${tableName}" did not become ACTIVE within ${ACTIVE_TIMEOUT_MS / 1000} s.`);
    }
    await new Promise((resolve) => setTimeout(resolve, ACTIVE_POLL_MS));
    table = await describe(client, tableName);
  }
  await enableTimeToLive(client, tableName);
}

async function enableTimeToLive(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    const { TimeToLiveDescription } = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
    const status = TimeToLiveDescription?.TimeToLiveStatus;
    // UpdateTimeToLive on a table where TTL is already on fails with a ValidationException.
    if (status === 'ENABLED' || status === 'ENABLING') return;
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
      }),
    );
  } catch (error) {
    // dynalite answers UnknownOperationException; other emulators a ValidationException. Expiry still
    // works without it: reads filter expired items and the emulator sweeps them.
    const name = errorName(error);
    if (name === 'UnknownOperationException' || name === 'ValidationException') return;
    throw error;
  }
}
