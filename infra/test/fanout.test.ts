import { existsSync } from 'node:fs';
import { ENV, IOT_HANDLERS, LIMITS, WS_HANDLERS } from '@viba-realtime/protocol';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FANOUT_MAX_CONCURRENCY,
  FANOUT_MAX_RECEIVE_COUNT,
  FANOUT_WORKER_HANDLER,
  FANOUT_WORKER_TIMEOUT,
  Realtime,
  type RealtimeProps,
  TOKEN_SWEEPER_HANDLER,
} from '../src/realtime.js';
import { VibaRealtimeStack } from '../src/stack.js';
import {
  actionsOf,
  allPolicyStatements,
  connectionsOf,
  envOf,
  logWriteStatement,
  newApp,
  normalizedStatements,
  POOL_ID,
  type PolicyStatement,
  type Resource,
  resources,
  stackArn,
  statementsOfRole,
  synth,
  tableArns,
} from './support.js';

const WORKER = FANOUT_WORKER_HANDLER;

/** Synth plus the logical ids and references the fan-out tests compare against. */
function synthFanout(props: Partial<RealtimeProps> = {}) {
  const synthesized = synth(props);
  const { stack, realtime } = synthesized;
  const idOf = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const queueId = idOf(realtime.fanout.queue);
  const dlqId = idOf(realtime.fanout.deadLetterQueue);
  const tableId = idOf(realtime.table);
  return {
    ...synthesized,
    queueId,
    dlqId,
    queueArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
    queueUrl: { Ref: queueId },
    tableRef: { Ref: tableId },
    tableStatements: tableStatements(tableId),
    workerLogGroupId: idOf(realtime.fanout.workerFunction.logGroup),
  };
}

// Spelled out rather than read from the construct's constants, so that widening a grant fails here.
const TABLE_ACTIONS = [
  'dynamodb:BatchWriteItem',
  'dynamodb:DeleteItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
];
const DELIVERY_TOPICS = ['rt/announcements', 'rt/announcements/groups/*', 'rt/users/*/inbox', 'rt/users/*/rooms/*'];
const topicArn = (topic: string) => stackArn('iot', `:topic/${topic}`);

/** The table grant of the routes actions: all of them on the table, `Query` also on the index (by name). */
function tableStatements(tableId: string): PolicyStatement[] {
  const { table, index } = tableArns(tableId);
  return [
    { Effect: 'Allow', Action: TABLE_ACTIONS, Resource: table },
    { Effect: 'Allow', Action: 'dynamodb:Query', Resource: index },
  ];
}

describe('fan-out queue', () => {
  it('is encrypted with SQS-managed keys, hides a message for 6 worker timeouts, and redrives to the DLQ', () => {
    const { template, queueId, dlqId } = synthFanout();

    const queues = Object.fromEntries(resources(template, 'AWS::SQS::Queue'));
    expect(Object.keys(queues).toSorted()).toEqual([dlqId, queueId].toSorted());
    expect(queues[queueId]?.Properties).toEqual({
      SqsManagedSseEnabled: true,
      // AWS's recommendation for a Lambda event source: six times the function's timeout.
      VisibilityTimeout: 6 * FANOUT_WORKER_TIMEOUT.toSeconds(),
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
    });
    expect(queues[queueId]?.Properties.VisibilityTimeout).toBe(360);
    expect(FANOUT_MAX_RECEIVE_COUNT).toBe(5);
  });

  it('has a dead-letter queue kept 14 days, encrypted', () => {
    const { template, dlqId } = synthFanout();

    expect((template.toJSON().Resources[dlqId] as Resource).Properties).toEqual({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
  });

  it('refuses every request without TLS, on both queues, and allows nothing in its resource policy', () => {
    const { template, queueId, dlqId } = synthFanout();

    const policies = resources(template, 'AWS::SQS::QueuePolicy');
    expect(policies).toHaveLength(2);
    for (const id of [queueId, dlqId]) {
      const [, policy] =
        policies.find(([, p]) => JSON.stringify(p.Properties.Queues) === JSON.stringify([{ Ref: id }])) ?? [];
      expect(policy, id).toBeDefined();
      expect(policy?.Properties.PolicyDocument, id).toEqual({
        Version: '2012-10-17',
        Statement: [
          {
            Action: 'sqs:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Resource: { 'Fn::GetAtt': [id, 'Arn'] },
          },
        ],
      });
    }
  });
});

describe('fan-out worker', () => {
  it('times out at half the batch claim staleness, so a takeover never races a running worker', () => {
    const { template, functionIds } = synthFanout();
    const timeout = (template.toJSON().Resources[functionIds[WORKER]] as Resource).Properties.Timeout as number;

    expect(timeout * 2).toBe(LIMITS.fanoutClaimStaleMs / 1000);
    expect(timeout).toBe(FANOUT_WORKER_TIMEOUT.toSeconds());
  });

  it('is built from lambdas/src/handlers/fanout-worker.ts with the settings of every other function', () => {
    const { template, functionIds } = synthFanout();
    const propertiesOf = (id: string) => {
      const { Timeout, Environment, Role, Code, LoggingConfig, ...rest } = (template.toJSON().Resources[id] as Resource)
        .Properties;
      const { LogGroup, ...logging } = LoggingConfig as Record<string, unknown>;
      return { ...rest, LoggingConfig: logging };
    };

    expect(existsSync(new URL(`../../lambdas/src/handlers/${WORKER}.ts`, import.meta.url))).toBe(true);
    // Same runtime, architecture, memory, handler, log format and levels as the routes function.
    expect(propertiesOf(functionIds[WORKER])).toEqual(propertiesOf(functionIds[WS_HANDLERS.routes]));
    expect(propertiesOf(functionIds[WORKER])).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs22.x' });
  });

  it('drains the queue one batch per invocation, reports partial failures, and runs a bounded number at once', () => {
    const { template, functionIds, queueArn } = synthFanout();

    const mappings = resources(template, 'AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(1);
    const [[, mapping]] = mappings as [[string, Resource]];
    expect(mapping.Properties).toEqual({
      EventSourceArn: queueArn,
      FunctionName: { Ref: functionIds[WORKER] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: DEFAULT_FANOUT_MAX_CONCURRENCY },
    });
  });

  it('defaults to as many workers as keep 48 posts each at ~20 ms under API Gateway’s 10,000 req/s', () => {
    expect(LIMITS.deliveryConcurrency).toBe(48);
    expect(DEFAULT_FANOUT_MAX_CONCURRENCY).toBe(4);
    // workers x posts in flight / seconds per post
    expect((DEFAULT_FANOUT_MAX_CONCURRENCY * LIMITS.deliveryConcurrency) / 0.02).toBeLessThanOrEqual(10_000);
    expect(((DEFAULT_FANOUT_MAX_CONCURRENCY + 1) * LIMITS.deliveryConcurrency) / 0.02).toBeGreaterThan(10_000);
  });

  it('takes fanoutMaxConcurrency, within Lambda’s 2 to 1000', () => {
    const { template } = synthFanout({ fanoutMaxConcurrency: 10 });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { ScalingConfig: { MaximumConcurrency: 10 } });

    for (const bad of [1, 1001, 2.5, Number.NaN]) {
      expect(() => synth({ fanoutMaxConcurrency: bad }), String(bad)).toThrow(
        /fanoutMaxConcurrency must be a whole number from 2 to 1000/,
      );
    }
  });
});

describe('fan-out environment', () => {
  it('gives the worker the table, the stage’s @connections URL, the IoT endpoint and the queue', () => {
    const { template, functionIds, apiId, tableRef, queueUrl } = synthFanout({ logLevel: 'warn' });
    const [[lookupId]] = resources(template, 'Custom::AWS') as [[string, Resource]];

    expect(envOf(template, functionIds[WORKER])).toEqual({
      [ENV.logLevel]: 'warn',
      NODE_OPTIONS: '--enable-source-maps',
      [ENV.tableName]: tableRef,
      [ENV.connectionsEndpoint]: connectionsOf(apiId).url,
      [ENV.iotEndpoint]: { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [lookupId, 'endpointAddress'] }]] },
      [ENV.fanoutQueueUrl]: queueUrl,
    });
  });

  it('gives the queue URL to exactly the functions that enqueue: routes, ingress and the worker', () => {
    const { template, functionIds, queueUrl } = synthFanout();

    const withQueue = Object.entries(functionIds)
      .filter(([, id]) => ENV.fanoutQueueUrl in envOf(template, id))
      .map(([handler]) => handler);
    expect(withQueue.toSorted()).toEqual([IOT_HANDLERS.ingress, WORKER, WS_HANDLERS.routes].toSorted());
    for (const handler of withQueue) {
      expect(envOf(template, functionIds[handler as keyof typeof functionIds])[ENV.fanoutQueueUrl], handler).toEqual(
        queueUrl,
      );
    }
  });

  it('leaves the IoT endpoint out of the worker with mqtt: false', () => {
    const { template, functionIds, apiId, tableRef, queueUrl } = synthFanout({ mqtt: false });

    expect(envOf(template, functionIds[WORKER])).toEqual({
      [ENV.logLevel]: 'info',
      NODE_OPTIONS: '--enable-source-maps',
      [ENV.tableName]: tableRef,
      [ENV.connectionsEndpoint]: connectionsOf(apiId).url,
      [ENV.fanoutQueueUrl]: queueUrl,
    });
  });
});

describe('fan-out IAM', () => {
  it('gives the worker exactly: its logs, consume + send on the queue, the routes table actions, this stage, delivery topics', () => {
    const { template, roleId, apiId, queueArn, tableStatements, workerLogGroupId } = synthFanout();

    expect(normalizedStatements(statementsOfRole(template, roleId(WORKER)))).toEqual(
      normalizedStatements([
        {
          Effect: 'Allow',
          // The event source's own grant (Lambda polls with the function's role), merged with the re-queue.
          Action: [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
            'sqs:SendMessage',
          ],
          Resource: queueArn,
        },
        logWriteStatement(workerLogGroupId),
        ...tableStatements,
        { Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: connectionsOf(apiId).arn },
        { Effect: 'Allow', Action: 'iot:Publish', Resource: DELIVERY_TOPICS.map(topicArn) },
      ]),
    );
  });

  it('gives routes and ingress sqs:SendMessage on the queue and nothing else of SQS; no other function any', () => {
    const { template, roleId, queueArn } = synthFanout();
    const sqsOf = (handler: Parameters<typeof roleId>[0]) =>
      statementsOfRole(template, roleId(handler)).filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));

    for (const handler of [WS_HANDLERS.routes, IOT_HANDLERS.ingress]) {
      expect(sqsOf(handler), handler).toEqual([{ Action: 'sqs:SendMessage', Effect: 'Allow', Resource: queueArn }]);
    }
    for (const handler of [
      WS_HANDLERS.authorizer,
      IOT_HANDLERS.authorizer,
      IOT_HANDLERS.presence,
      TOKEN_SWEEPER_HANDLER,
    ] as const) {
      expect(sqsOf(handler), handler).toEqual([]);
    }
    // Three grantees in all (routes, ingress, worker), all on the queue, none on the DLQ.
    const sqsStatements = allPolicyStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    expect(sqsStatements).toHaveLength(3);
    for (const s of sqsStatements) expect(s.Resource).toEqual(queueArn);
  });

  it('grants no wildcard action and no new `*` resource', () => {
    const { template } = synthFanout();

    const statements = allPolicyStatements(template);
    for (const action of statements.flatMap(actionsOf)) expect(action).not.toContain('*');
    const onEverything = statements.filter((s) => [s.Resource].flat().includes('*'));
    expect(onEverything.flatMap(actionsOf)).toEqual(['iot:DescribeEndpoint']);
  });

  it('gives the worker no IoT action with mqtt: false', () => {
    const { template, roleId } = synthFanout({ mqtt: false });

    const iot = statementsOfRole(template, roleId(WORKER))
      .flatMap(actionsOf)
      .filter((a) => a.startsWith('iot:'));
    expect(iot).toEqual([]);
  });
});

describe('grantPublish', () => {
  function withBackendRole(props: Partial<RealtimeProps> = {}) {
    const stack = new Stack(newApp(), 'TestStack');
    const realtime = new Realtime(stack, 'Realtime', { userPool: POOL_ID, userPoolClientIds: ['clientA'], ...props });
    const role = new Role(stack, 'Backend', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const grant = realtime.grantPublish(role);
    const template = Template.fromStack(stack);
    const idOf = (construct: { node: { defaultChild?: unknown } }) =>
      stack.getLogicalId(construct.node.defaultChild as CfnElement);
    return {
      realtime,
      grant,
      template,
      statements: statementsOfRole(template, idOf(role)),
      apiId: idOf(realtime.webSocketApi),
      queueArn: { 'Fn::GetAtt': [idOf(realtime.fanout.queue), 'Arn'] },
      tableStatements: tableStatements(idOf(realtime.table)),
    };
  }

  it('gives a backend role exactly what the publisher needs', () => {
    const { statements, grant, apiId, queueArn, tableStatements } = withBackendRole();

    expect(grant.success).toBe(true);
    expect(normalizedStatements(statements)).toEqual(
      normalizedStatements([
        ...tableStatements,
        { Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: connectionsOf(apiId).arn },
        { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn },
        { Effect: 'Allow', Action: 'iot:Publish', Resource: DELIVERY_TOPICS.map(topicArn) },
        // disconnectUser: client ids are `{sub}` or `{sub}.{suffix}`, so `client/*` is the narrowest IoT allows.
        { Effect: 'Allow', Action: 'iot:DeleteConnection', Resource: stackArn('iot', ':client/*') },
      ]),
    );
    for (const action of statements.flatMap(actionsOf)) expect(action).not.toContain('*');
  });

  it('grants no IoT action with mqtt: false', () => {
    const { statements, apiId, queueArn, tableStatements } = withBackendRole({ mqtt: false });

    expect(normalizedStatements(statements)).toEqual(
      normalizedStatements([
        ...tableStatements,
        { Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: connectionsOf(apiId).arn },
        { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn },
      ]),
    );
  });

  it('pairs with publisherEnvironment on a backend function', () => {
    const stack = new Stack(newApp(), 'TestStack');
    const realtime = new Realtime(stack, 'Realtime', { userPool: POOL_ID, userPoolClientIds: ['clientA'] });
    const backend = new LambdaFunction(stack, 'Backend', {
      runtime: Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: Code.fromInline('export const handler = async () => {};'),
      environment: realtime.publisherEnvironment,
    });
    realtime.grantPublish(backend);
    const template = Template.fromStack(stack);
    const idOf = (construct: { node: { defaultChild?: unknown } }) =>
      stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const [[lookupId]] = resources(template, 'Custom::AWS') as [[string, Resource]];

    expect(envOf(template, idOf(backend))).toEqual({
      [ENV.tableName]: { Ref: idOf(realtime.table) },
      [ENV.connectionsEndpoint]: connectionsOf(idOf(realtime.webSocketApi)).url,
      [ENV.iotEndpoint]: { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [lookupId, 'endpointAddress'] }]] },
      [ENV.fanoutQueueUrl]: { Ref: idOf(realtime.fanout.queue) },
    });
    const backendRole = idOf(backend.role as Role);
    const actions = statementsOfRole(template, backendRole).flatMap(actionsOf);
    expect(actions).toContain('sqs:SendMessage');
    expect(actions).toContain('iot:DeleteConnection');
  });

  it('publisherEnvironment has no IoT endpoint with mqtt: false', () => {
    const { realtime } = synth({ mqtt: false });

    expect(Object.keys(realtime.publisherEnvironment).toSorted()).toEqual(
      [ENV.connectionsEndpoint, ENV.fanoutQueueUrl, ENV.tableName].toSorted(),
    );
  });
});

describe('fan-out alarms', () => {
  it('alarm on any message in the DLQ and on any worker error over 5 minutes, with no action of their own', () => {
    const { template, realtime, dlqId, functionIds, stack } = synthFanout();

    const alarms = Object.fromEntries(resources(template, 'AWS::CloudWatch::Alarm'));
    const idOf = (construct: { node: { defaultChild?: unknown } }) =>
      stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const common = {
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      Period: 300,
      TreatMissingData: 'notBreaching',
    };
    expect(alarms[idOf(realtime.fanout.deadLetterAlarm)]?.Properties).toEqual({
      ...common,
      AlarmDescription: expect.stringContaining('dead-letter queue'),
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Statistic: 'Maximum',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }],
    });
    expect(alarms[idOf(realtime.fanout.workerErrorsAlarm)]?.Properties).toEqual({
      ...common,
      AlarmDescription: expect.stringContaining('the fan-out worker (fanout-worker) failed'),
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionIds[WORKER] } }],
    });
    expect(realtime.alarms).toEqual(
      expect.arrayContaining([realtime.fanout.deadLetterAlarm, realtime.fanout.workerErrorsAlarm]),
    );
    expect(realtime.errorAlarms[WORKER]).toBe(realtime.fanout.workerErrorsAlarm);
  });
});

describe('VibaRealtimeStack fan-out output', () => {
  it('outputs the queue URL', () => {
    const stack = new VibaRealtimeStack(newApp(), 'VibaRealtimeStack', {
      userPoolId: POOL_ID,
      userPoolClientIds: ['clientA'],
    });
    const queueId = stack.getLogicalId(stack.realtime.fanout.queue.node.defaultChild as CfnElement);

    Template.fromStack(stack).hasOutput('FanoutQueueUrl', { Value: { Ref: queueId } });
  });
});
