/**
 * What a DynamoDB request names, for matching fault rules: its operation (from `X-Amz-Target`) and, for each item
 * it reads or writes, the table and the key's partition and sort values. Read from the JSON body the way
 * DynamoDB's API shapes it (`Key`, `Item`, `RequestItems`, `TransactItems`, a Query's key condition).
 */
import { TABLE } from '@viba-realtime/protocol';
import type { DynamoDbRequest } from './rules.js';

type Json = Record<string, unknown>;
type Item = DynamoDbRequest['items'][number];

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A key attribute's value as text (`{"S": "ROOM#lobby"}` or `{"N": "3"}`). */
function scalar(value: unknown): string | undefined {
  if (!isObject(value)) return undefined;
  if (typeof value.S === 'string') return value.S;
  if (typeof value.N === 'string') return value.N;
  return undefined;
}

/** The key attribute names of the table or of the index a request reads. */
function keyNames(indexName: unknown): { partition: string; sort: string } {
  const index = Object.values(TABLE.indexes).find((i) => i.name === indexName);
  return index === undefined
    ? { partition: TABLE.partitionKey, sort: TABLE.sortKey }
    : { partition: index.partitionKey, sort: index.sortKey };
}

function keyed(table: unknown, key: unknown, indexName?: unknown): Item {
  const names = keyNames(indexName);
  const attributes = isObject(key) ? key : {};
  const item: { table?: string; partitionKey?: string; sortKey?: string } = {};
  if (typeof table === 'string') item.table = table;
  const partitionKey = scalar(attributes[names.partition]);
  if (partitionKey !== undefined) item.partitionKey = partitionKey;
  const sortKey = scalar(attributes[names.sort]);
  if (sortKey !== undefined) item.sortKey = sortKey;
  return item;
}

/** A Query's key values: the partition key's `=` and the sort key's `begins_with` prefix or first bound. */
function queried(body: Json): Item {
  const names = keyNames(body.IndexName);
  const expression = typeof body.KeyConditionExpression === 'string' ? body.KeyConditionExpression : '';
  const aliases = isObject(body.ExpressionAttributeNames) ? body.ExpressionAttributeNames : {};
  const values = isObject(body.ExpressionAttributeValues) ? body.ExpressionAttributeValues : {};
  const nameOf = (token: string) => (token.startsWith('#') ? aliases[token] : token);
  const key: Json = {};
  const prefix = /begins_with\s*\(\s*([#\w]+)\s*,\s*(:\w+)\s*\)/.exec(expression);
  if (prefix && nameOf(prefix[1] as string) === names.sort) key[names.sort] = values[prefix[2] as string];
  for (const [, name, value] of expression.matchAll(/([#\w]+)\s*(?:=|<=|>=|<|>|BETWEEN)\s*(:\w+)/gi)) {
    const attribute = nameOf(name as string);
    if ((attribute === names.partition || attribute === names.sort) && key[attribute as string] === undefined)
      key[attribute as string] = values[value as string];
  }
  return keyed(body.TableName, key, body.IndexName);
}

/** Describes a request body of `operation`; a body that is not DynamoDB's shape yields what it can. */
export function describeDynamoDbRequest(operation: string, body: unknown): DynamoDbRequest {
  if (!isObject(body)) return { operation, items: [] };
  const items: Item[] = [];
  switch (operation) {
    case 'GetItem':
    case 'DeleteItem':
    case 'UpdateItem':
      items.push(keyed(body.TableName, body.Key));
      break;
    case 'PutItem':
      items.push(keyed(body.TableName, body.Item));
      break;
    case 'Query':
      items.push(queried(body));
      break;
    case 'BatchWriteItem':
    case 'BatchGetItem':
      for (const [table, requests] of Object.entries(isObject(body.RequestItems) ? body.RequestItems : {})) {
        if (Array.isArray(requests)) {
          for (const request of requests) {
            if (!isObject(request)) continue;
            const put = isObject(request.PutRequest) ? request.PutRequest.Item : undefined;
            const del = isObject(request.DeleteRequest) ? request.DeleteRequest.Key : undefined;
            items.push(keyed(table, put ?? del));
          }
        } else if (isObject(requests) && Array.isArray(requests.Keys)) {
          for (const key of requests.Keys) items.push(keyed(table, key));
        }
      }
      break;
    case 'TransactWriteItems':
    case 'TransactGetItems':
      for (const entry of Array.isArray(body.TransactItems) ? body.TransactItems : []) {
        if (!isObject(entry)) continue;
        for (const action of Object.values(entry)) {
          if (isObject(action)) items.push(keyed(action.TableName, action.Item ?? action.Key));
        }
      }
      break;
    default:
      if (typeof body.TableName === 'string') items.push({ table: body.TableName });
  }
  return { operation, items };
}
