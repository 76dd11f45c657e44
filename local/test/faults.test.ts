/**
 * The fault injection module: rules (validation, matching), the injector (order, counters, seeded draws) and the
 * wire shape of each fault as the real AWS SDK clients read it. The end-to-end guarantees under faults are in
 * test/reliability/faults.test.ts.
 */
import {
  ApiGatewayManagementApiClient,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient, GetItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeDynamoDbRequest,
  type Emulator,
  FaultInjector,
  FaultTargetUnavailableError,
  InvalidFaultRuleError,
  parseFaultOptions,
  parseFaultRule,
  startEmulator,
  topicMatches,
} from '../src/index.js';

const sdk = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 };

describe('rules', () => {
  it.each([
    [{ target: 'sqs', fault: '500' }, 'rule.target'],
    [{ target: 'dynamodb', fault: '429' }, 'rule.fault'],
    [{ target: 'handler', fault: 'error', times: 0 }, 'rule.times'],
    [{ target: 'handler', fault: 'error', probability: 0 }, 'rule.probability'],
    [{ target: 'connections', fault: '410', match: { connectionID: 'x' } }, 'rule.match.connectionID'],
    [{ target: 'connections', fault: '410', match: { topic: 'a/b' } }, 'rule.match.topic'],
    [{ target: 'dynamodb', fault: 'throttle', match: { operation: 'Putitem' } }, 'rule.match.operation'],
    [{ target: 'iot-publish', fault: '503', match: { topic: 'rt/#/x' } }, 'rule.match.topic'],
    [{ target: 'handler', fault: 'timeout', match: { handler: ['ws-routes', 'lambda'] } }, 'rule.match.handler[1]'],
    [{ target: 'handler', fault: 'timeout', tiems: 1 }, 'rule.tiems'],
  ])('refuses %j naming %s', (rule, field) => {
    expect.assertions(2);
    try {
      parseFaultRule(rule);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidFaultRuleError);
      expect((error as InvalidFaultRuleError).toJSON()).toMatchObject({ code: 'invalid_fault_rule', field });
    }
  });

  it('reads a --faults file: a list of rules, or rules with a seed and function timeouts', () => {
    expect(parseFaultOptions([{ target: 'connections', fault: '429' }])).toEqual({
      rules: [{ target: 'connections', fault: '429' }],
    });
    expect(parseFaultOptions({ seed: 3, functionTimeoutsMs: { 'ws-routes': 500 }, rules: [] })).toEqual({
      seed: 3,
      functionTimeoutsMs: { 'ws-routes': 500 },
      rules: [],
    });
    expect(() => parseFaultOptions({ functionTimeoutsMs: { 'ws-route': 500 } })).toThrow(InvalidFaultRuleError);
    expect(() => parseFaultOptions({ rules: [{ target: 'handler' }] })).toThrow('rules[0].fault');
  });

  it('matches MQTT topic filters as the broker does', () => {
    expect(topicMatches('rt/users/+/rooms/#', 'rt/users/bob/rooms/lobby')).toBe(true);
    expect(topicMatches('rt/users/+/rooms/#', 'rt/users/bob/rooms')).toBe(true);
    expect(topicMatches('rt/users/+/responses', 'rt/users/bob/rooms/lobby')).toBe(false);
    expect(topicMatches('rt/users/+', 'rt/users/bob/inbox')).toBe(false);
  });

  it("describes a DynamoDB request's items: Key, Item, a Query's key condition, batches and transactions", () => {
    expect(
      describeDynamoDbRequest('Query', {
        TableName: 't',
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
        ExpressionAttributeValues: { ':pk': { S: 'ROOM#lobby' }, ':prefix': { S: 'SUB#' } },
      }),
    ).toEqual({ operation: 'Query', items: [{ table: 't', partitionKey: 'ROOM#lobby', sortKey: 'SUB#' }] });
    expect(
      describeDynamoDbRequest('BatchWriteItem', {
        RequestItems: {
          t: [
            { PutRequest: { Item: { pk: { S: 'AUD#all#3' }, sk: { S: 'CONN#a' } } } },
            { DeleteRequest: { Key: { pk: { S: 'AUD#g#1' }, sk: { S: 'CONN#a' } } } },
          ],
        },
      }).items,
    ).toEqual([
      { table: 't', partitionKey: 'AUD#all#3', sortKey: 'CONN#a' },
      { table: 't', partitionKey: 'AUD#g#1', sortKey: 'CONN#a' },
    ]);
    expect(
      describeDynamoDbRequest('TransactWriteItems', {
        TransactItems: [{ Update: { TableName: 't', Key: { pk: { S: 'ROOM#x' }, sk: { S: 'META' } } } }],
      }).items,
    ).toEqual([{ table: 't', partitionKey: 'ROOM#x', sortKey: 'META' }]);
  });
});

describe('the injector', () => {
  const put = (sk: string) => ({ operation: 'PutItem', items: [{ table: 't', partitionKey: 'MSGS#r', sortKey: sk }] });

  it('tries rules in order, honours skip and times, and counts what matched and what fired', () => {
    const injector = new FaultInjector({ seed: 1 });
    const hook = injector.hook('dynamodb');
    const later = injector.add({
      target: 'dynamodb',
      match: { sortKeyPrefix: 'SEQ#' },
      fault: 'throttle',
      skip: 1,
      times: 2,
    });
    injector.add({ target: 'dynamodb', match: { operation: ['PutItem'] }, fault: 'server-error', id: 'any-put' });

    const faults = [put('SEQ#1'), put('SEQ#2'), put('SEQ#3'), put('SEQ#4'), put('DEDUPE#x')].map((r) => hook.decide(r));

    // The first SEQ# write is skipped by the first rule and caught by the second.
    expect(faults).toEqual(['server-error', 'throttle', 'throttle', 'server-error', 'server-error']);
    expect(injector.get(later.id)).toMatchObject({ id: 'f1', matched: 3, fired: 2, active: false, skip: 1 });
    expect(injector.get('any-put')).toMatchObject({ matched: 3, fired: 3, active: true });
    expect(hook.decide({ operation: 'GetItem', items: [] })).toBeUndefined();
    expect(injector.remove('any-put')).toBe(true);
    expect(injector.remove('any-put')).toBe(false);
    expect(hook.armed()).toBe(false);
    expect(injector.clear()).toBe(1);
  });

  it('draws `probability` from its seed: the same seed fails the same requests', () => {
    const run = (seed: number) => {
      const injector = new FaultInjector({ seed });
      injector.add({ target: 'connections', fault: '429', probability: 0.3 });
      const hook = injector.hook('connections');
      return Array.from({ length: 40 }, () => hook.decide({ operation: 'PostToConnection', connectionId: 'c' }) ?? '-');
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
    const fired = run(7).filter((f) => f === '429').length;
    expect(fired).toBeGreaterThan(4);
    expect(fired).toBeLessThan(24);
  });

  it('refuses a taken id and a target the emulator does not run; lists plain JSON', () => {
    const injector = new FaultInjector({ unavailable: { dynamodb: 'external table' } });
    injector.add({ id: 'x', target: 'handler', fault: 'error' });
    expect(() => injector.add({ id: 'x', target: 'handler', fault: 'timeout' })).toThrow(InvalidFaultRuleError);
    expect(() => injector.add({ target: 'dynamodb', fault: 'throttle' })).toThrow(FaultTargetUnavailableError);
    expect(JSON.parse(JSON.stringify(injector.list()))).toEqual([
      { id: 'x', target: 'handler', fault: 'error', matched: 0, fired: 0, active: true },
    ]);
  });

  it('resolves whenFired once the rule has fired that often', async () => {
    const injector = new FaultInjector();
    const rule = injector.add({ target: 'handler', fault: 'error' });
    const hook = injector.hook('handler');
    const twice = injector.whenFired(rule.id, 2);
    hook.decide({ handler: 'ws-routes' });
    hook.decide({ handler: 'fanout-worker' });
    expect(await twice).toMatchObject({ fired: 2 });
    expect(await injector.whenFired(rule.id, 1)).toMatchObject({ fired: 2 });
  });
});

describe('faults on the wire, as the AWS SDK reads them', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, logLevel: 'silent', faults: true });
  });
  afterAll(() => emulator.close());

  it("DynamoDB: ProvisionedThroughputExceededException 400 and InternalServerError 500, in DynamoDB's JSON shape", async () => {
    const faults = emulator.faults as FaultInjector;
    const client = new DynamoDBClient({ ...sdk, endpoint: emulator.dynamodbEndpoint });
    faults.add({ target: 'dynamodb', match: { operation: 'GetItem' }, fault: 'throttle', times: 1 });
    // dynalite has no transactions: the fault answers before it would refuse the operation.
    faults.add({ target: 'dynamodb', match: { operation: 'TransactWriteItems' }, fault: 'server-error', times: 1 });
    const get = new GetItemCommand({ TableName: emulator.tableName, Key: { pk: { S: 'x' }, sk: { S: 'y' } } });

    await expect(client.send(get)).rejects.toMatchObject({
      name: 'ProvisionedThroughputExceededException',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(client.send(new TransactWriteItemsCommand({ TransactItems: [] }))).rejects.toMatchObject({
      name: 'InternalServerError',
      $fault: 'server',
      $metadata: { httpStatusCode: 500 },
    });
    await expect(client.send(get)).resolves.toMatchObject({ $metadata: { httpStatusCode: 200 } });
    client.destroy();
  });

  it('@connections: LimitExceededException 429, InternalServerErrorException 500, GoneException 410', async () => {
    const faults = emulator.faults as FaultInjector;
    const client = new ApiGatewayManagementApiClient({ ...sdk, endpoint: emulator.connectionsEndpoint });
    for (const fault of ['429', '500', '410'] as const) {
      faults.add({ target: 'connections', match: { connectionId: 'c1' }, fault, times: 1 });
    }
    const post = new PostToConnectionCommand({ ConnectionId: 'c1', Data: new TextEncoder().encode('{}') });
    const names = [];
    for (let i = 0; i < 3; i++) {
      names.push(
        await client
          .send(post)
          .catch((error: { name: string; $metadata: { httpStatusCode: number } }) => [
            error.name,
            error.$metadata.httpStatusCode,
          ]),
      );
    }
    expect(names).toEqual([
      ['LimitExceededException', 429],
      ['InternalServerErrorException', 500],
      ['GoneException', 410],
    ]);
    faults.add({ target: 'connections', match: { operation: 'GetConnection' }, fault: '500', times: 1 });
    await expect(client.send(new GetConnectionCommand({ ConnectionId: 'c1' }))).rejects.toMatchObject({
      name: 'InternalServerErrorException',
    });
    client.destroy();
  });

  it("IoT Publish: the data plane model's ThrottlingException 429, InternalFailureException 500, ServiceUnavailableException 503", async () => {
    const faults = emulator.faults as FaultInjector;
    const client = new IoTDataPlaneClient({ ...sdk, endpoint: emulator.iotDataEndpoint as string });
    for (const fault of ['429', '500', '503'] as const) {
      faults.add({ target: 'iot-publish', match: { topic: 'rt/users/+/inbox' }, fault, times: 1 });
    }
    const publish = new PublishCommand({ topic: 'rt/users/ann/inbox', qos: 1, payload: new Uint8Array() });
    const errors = [];
    for (let i = 0; i < 3; i++) {
      errors.push(
        await client
          .send(publish)
          .catch((error: { name: string; $metadata: { httpStatusCode: number } }) => [
            error.name,
            error.$metadata.httpStatusCode,
          ]),
      );
    }
    expect(errors).toEqual([
      ['ThrottlingException', 429],
      ['InternalFailureException', 500],
      ['ServiceUnavailableException', 503],
    ]);
    await expect(client.send(publish)).resolves.toMatchObject({ $metadata: { httpStatusCode: 200 } });
    client.destroy();
  });

  it('is off by default and refuses rules for services the emulator does not run', async () => {
    const plain = await startEmulator({ port: 0, logLevel: 'silent', iot: false });
    try {
      expect(plain.faults).toBeUndefined();
    } finally {
      await plain.close();
    }
    await expect(
      startEmulator({ port: 0, logLevel: 'silent', iot: false, faults: [{ target: 'iot-publish', fault: '503' }] }),
    ).rejects.toBeInstanceOf(FaultTargetUnavailableError);
  });
});
