import { startLocalDynamoDb } from '../../local/src/dynamodb/server.js';
import { describeStoreContract } from './store.contract.js';

// The emulator's own server: the contract proves the store against exactly what `npm start` runs.
// Its TTL sweeper and persistence are tested in local/test/dynamodb-server.test.ts.
describeStoreContract('dynalite', () => startLocalDynamoDb({ tableName: 'contract-default' }));
