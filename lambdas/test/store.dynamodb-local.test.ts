import { describeStoreContract } from './store.contract.js';
import { startDynamoDbLocal } from './support/dynamodb-local.js';

describeStoreContract('DynamoDB Local', startDynamoDbLocal);
