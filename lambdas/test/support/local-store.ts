/** The store the core tests run on: the real DynamoDbStore against the emulator's DynamoDB-API server. */
import type { LocalDynamoDb } from '../../../local/src/dynamodb/server.js';
import type { Clock } from '../../src/core/ports.js';
import { createDynamoDbStore, type DynamoDbStore } from '../../src/store/dynamodb.js';

/** A store on `dynamo`'s table, with the server's dummy credentials and the test's clock. */
export function localStore(dynamo: LocalDynamoDb, clock: Clock): DynamoDbStore {
  return createDynamoDbStore({
    tableName: dynamo.tableName,
    region: 'us-east-1',
    endpoint: dynamo.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    clock,
  });
}
