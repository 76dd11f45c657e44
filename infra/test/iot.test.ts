import { ENV, IOT_HANDLERS, IOT_RULES, IOT_SQL_VERSION } from '@viba-realtime/protocol';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { describe, expect, it } from 'vitest';
import { Realtime } from '../src/realtime.js';
import { VibaRealtimeStack } from '../src/stack.js';
import {
  actionsOf,
  allPolicyStatements,
  envOf,
  logWriteStatement,
  newApp,
  POOL_ID,
  type PolicyStatement,
  type Resource,
  resources,
  stackArn,
  statementsOfRole,
  synth,
} from './support.js';

/** `TestStack/Realtime` made unique and alphanumeric: the prefix of every IoT name of the construct. */
const NAME_PREFIX = /^TestStackRealtime[0-9A-F]{8}_/;

function ruleResources(template: Template) {
  return resources(template, 'AWS::IoT::TopicRule').map(([id, rule]) => {
    const payload = rule.Properties.TopicRulePayload as {
      Sql: string;
      AwsIotSqlVersion: string;
      RuleDisabled: boolean;
      Actions: { Lambda?: { FunctionArn: unknown } }[];
      ErrorAction: { CloudwatchLogs?: { LogGroupName: unknown; RoleArn: unknown } };
    };
    return { id, rule, ruleName: rule.Properties.RuleName as string, payload };
  });
}

function iotPermissions(template: Template) {
  return resources(template, 'AWS::Lambda::Permission').filter(
    ([, p]) => p.Properties.Principal === 'iot.amazonaws.com',
  );
}

describe('the contract IOT_RULES', () => {
  // Spelled out, so that a change to the contract is a deliberate one (the emulator builds these events).
  it('is the three rules of the MQTT channel, with their exact filters and SQL', () => {
    const ingressSql = (filter: string) =>
      "SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS clientId, " +
      "get_mqtt_property('response_topic') AS responseTopic, " +
      `get_mqtt_property('correlation_data') AS correlationData FROM '${filter}'`;

    expect(IOT_RULES).toEqual([
      { name: 'requests', filter: 'rt/users/+/requests', sql: ingressSql('rt/users/+/requests'), target: 'ingress' },
      { name: 'roomSend', filter: 'rt/rooms/+/send', sql: ingressSql('rt/rooms/+/send'), target: 'ingress' },
      {
        name: 'presence',
        filter: '$aws/events/presence/+/+',
        sql: "SELECT * FROM '$aws/events/presence/+/+'",
        target: 'presence',
      },
    ]);
    expect(IOT_SQL_VERSION).toBe('2016-03-23');
  });
});

describe('Realtime MQTT: topic rules', () => {
  it('are exactly the contract IOT_RULES: one rule each, same filter and SQL, invoking the target handler', () => {
    const { template, functionIds } = synth();

    const synthesized = ruleResources(template).map(({ ruleName, payload }) => {
      expect(ruleName).toMatch(NAME_PREFIX);
      expect(payload.AwsIotSqlVersion).toBe(IOT_SQL_VERSION);
      expect(payload.RuleDisabled).toBe(false);
      expect(payload.Actions).toHaveLength(1);
      const target = Object.entries(functionIds).find(
        ([, id]) =>
          JSON.stringify(payload.Actions[0]?.Lambda?.FunctionArn) === JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }),
      )?.[0];
      return {
        name: ruleName.replace(NAME_PREFIX, ''),
        filter: /FROM '([^']+)'$/.exec(payload.Sql)?.[1],
        sql: payload.Sql,
        handler: target,
      };
    });

    expect(synthesized.toSorted((a, b) => a.name.localeCompare(b.name))).toEqual(
      IOT_RULES.map((rule) => ({
        name: rule.name,
        filter: rule.filter,
        sql: rule.sql,
        handler: IOT_HANDLERS[rule.target],
      })).toSorted((a, b) => a.name.localeCompare(b.name)),
    );
  });

  it('have names IoT accepts ([A-Za-z0-9_], at most 128) and unique per construct', () => {
    const stack = new Stack(newApp(), 'TwoStack');
    const one = new Realtime(stack, 'One', { userPool: POOL_ID, userPoolClientIds: ['clientA'] });
    const two = new Realtime(stack, 'Two', { userPool: POOL_ID, userPoolClientIds: ['clientA'] });
    const names = ruleResources(Template.fromStack(stack)).map((r) => r.ruleName);

    expect(names).toHaveLength(2 * IOT_RULES.length);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_]{1,128}$/);
    expect(one.mqtt?.authorizerName).not.toBe(two.mqtt?.authorizerName);
  });

  it('may invoke their Lambda only from that rule of this account, and exist only once allowed to', () => {
    const { template, functionIds } = synth();
    const permissions = iotPermissions(template);

    for (const { id, ruleName, payload } of ruleResources(template)) {
      const matching = permissions.filter(
        ([, p]) => JSON.stringify(p.Properties.SourceArn) === JSON.stringify(stackArn('iot', `:rule/${ruleName}`)),
      );
      expect(matching, ruleName).toHaveLength(1);
      const [permissionId, permission] = matching[0] as [string, Resource];
      expect(permission.Properties).toEqual({
        Action: 'lambda:InvokeFunction',
        FunctionName: payload.Actions[0]?.Lambda?.FunctionArn,
        Principal: 'iot.amazonaws.com',
        SourceArn: stackArn('iot', `:rule/${ruleName}`),
        SourceAccount: { Ref: 'AWS::AccountId' },
      });
      expect(template.toJSON().Resources[id].DependsOn, ruleName).toContain(permissionId);
    }
    // Three rules and the authorizer: nothing else lets IoT invoke anything.
    expect(permissions).toHaveLength(IOT_RULES.length + 1);
    const invoked = new Set(permissions.map(([, p]) => JSON.stringify(p.Properties.FunctionName)));
    expect(invoked).toEqual(
      new Set(
        [IOT_HANDLERS.authorizer, IOT_HANDLERS.ingress, IOT_HANDLERS.presence].map((h) =>
          JSON.stringify({ 'Fn::GetAtt': [functionIds[h], 'Arn'] }),
        ),
      ),
    );
  });

  it('log a failed action to a log group, through a role that can only write there', () => {
    const { template, realtime, stack } = synth();
    const logGroupId = stack.getLogicalId(realtime.mqtt?.ruleErrorLogGroup.node.defaultChild as CfnElement);
    const [[roleId, role]] = resources(template, 'AWS::IAM::Role').filter(([id]) =>
      id.startsWith('RealtimeIotRuleErrorRole'),
    ) as [[string, Resource]];

    for (const { ruleName, payload } of ruleResources(template)) {
      expect(payload.ErrorAction, ruleName).toEqual({
        CloudwatchLogs: { LogGroupName: { Ref: logGroupId }, RoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } },
      });
    }
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'iot.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
            ArnLike: {
              'aws:SourceArn': stackArn('iot', `:rule/${realtime.mqtt?.authorizerName.replace(/authorizer$/, '*')}`),
            },
          },
        },
      ],
    });
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(statementsOfRole(template, roleId)).toEqual([
      {
        Action: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
      },
    ]);
  });
});

describe('Realtime MQTT: custom authorizer', () => {
  it('is active, signing disabled (the token is a Cognito JWT), no HTTP caching, backed by iot-authorizer', () => {
    const { template, functionIds, realtime } = synth();

    const authorizers = resources(template, 'AWS::IoT::Authorizer');
    expect(authorizers).toHaveLength(1);
    const [[, authorizer]] = authorizers as [[string, Resource]];
    expect(authorizer.Properties).toEqual({
      AuthorizerName: realtime.mqtt?.authorizerName,
      AuthorizerFunctionArn: { 'Fn::GetAtt': [functionIds[IOT_HANDLERS.authorizer], 'Arn'] },
      SigningDisabled: true,
      Status: 'ACTIVE',
      EnableCachingForHttp: false,
    });
    expect(realtime.mqtt?.authorizerName).toMatch(new RegExp(`${NAME_PREFIX.source}authorizer$`));
  });

  it('may be invoked by IoT only as this authorizer, and exists only once allowed to', () => {
    const { template, functionIds, realtime } = synth();
    const name = realtime.mqtt?.authorizerName ?? '';

    const matching = iotPermissions(template).filter(
      ([, p]) => JSON.stringify(p.Properties.SourceArn) === JSON.stringify(stackArn('iot', `:authorizer/${name}`)),
    );
    expect(matching).toHaveLength(1);
    const [[permissionId, permission]] = matching as [[string, Resource]];
    expect(permission.Properties).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [functionIds[IOT_HANDLERS.authorizer], 'Arn'] },
      Principal: 'iot.amazonaws.com',
      SourceArn: stackArn('iot', `:authorizer/${name}`),
      SourceAccount: { Ref: 'AWS::AccountId' },
    });
    const [[, authorizer]] = resources(template, 'AWS::IoT::Authorizer') as [[string, Resource]];
    expect(authorizer.DependsOn).toContain(permissionId);
  });
});

describe('Realtime MQTT: IoT data endpoint', () => {
  it('is looked up at deploy time with iot:DescribeEndpoint (Data-ATS) and nothing else', () => {
    const { template } = synth();

    const lookups = resources(template, 'Custom::AWS');
    expect(lookups).toHaveLength(1);
    const [[lookupId, lookup]] = lookups as [[string, Resource]];
    for (const phase of ['Create', 'Update'] as const) {
      expect(JSON.parse(lookup.Properties[phase] as string), phase).toMatchObject({
        service: 'Iot',
        action: 'describeEndpoint',
        parameters: { endpointType: 'iot:Data-ATS' },
        outputPaths: ['endpointAddress'],
      });
    }
    expect(lookup.Properties.Delete).toBeUndefined();
    // No npm install at deploy time: the SDK of the Lambda runtime is enough.
    expect(lookup.Properties.InstallLatestAwsSdk).toBe(false);
    const policies = resources(template, 'AWS::IAM::Policy').filter(([id]) =>
      id.startsWith(`${lookupId.slice(0, -8)}CustomResourcePolicy`),
    );
    expect(policies.flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: unknown[] }).Statement)).toEqual([
      { Action: 'iot:DescribeEndpoint', Effect: 'Allow', Resource: '*' },
    ]);
  });

  it('runs its provider with a role of its own that writes only the provider log group, no managed policy', () => {
    const { template, realtime, stack } = synth();
    const [[, provider]] = resources(template, 'AWS::Lambda::Function').filter(([id]) =>
      id.startsWith('AWS679f53fac002430cb0da5b7982bd2287'),
    ) as [[string, Resource]];
    const roleId = (provider.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const logGroupId = (provider.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
    const lookupPolicy = resources(template, 'AWS::IAM::Policy').find(([id]) => id.includes('CustomResourcePolicy'));

    expect(roleId).toMatch(/^RealtimeIotDataEndpointRole/);
    expect(logGroupId).toMatch(/^RealtimeIotDataEndpointLogs/);
    expect((template.toJSON().Resources[roleId] as Resource).Properties.ManagedPolicyArns).toBeUndefined();
    // Its own logs, and the lookup's policy (attached to it by AwsCustomResource).
    expect(statementsOfRole(template, roleId)).toEqual([
      logWriteStatement(logGroupId),
      { Action: 'iot:DescribeEndpoint', Effect: 'Allow', Resource: '*' },
    ]);
    expect(lookupPolicy?.[1].Properties.Roles).toEqual([{ Ref: roleId }]);
    expect(realtime.mqtt?.endpointLookup.node.path).toBe(`${stack.node.path}/Realtime/IotDataEndpoint`);
  });

  it('leaves the provider alone when the stack already has one: its role and log group are the first one’s', () => {
    const stack = new Stack(newApp(), 'SharedProviderStack');
    new AwsCustomResource(stack, 'Earlier', {
      onCreate: { service: 'STS', action: 'getCallerIdentity', physicalResourceId: PhysicalResourceId.of('x') },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: AwsCustomResourcePolicy.ANY_RESOURCE }),
      installLatestAwsSdk: false,
    });
    new Realtime(stack, 'Realtime', { userPool: POOL_ID, userPoolClientIds: ['clientA'] });
    const template = Template.fromStack(stack);

    expect(resources(template, 'AWS::Lambda::Function').filter(([id]) => id.startsWith('AWS679f53fa'))).toHaveLength(1);
    expect(resources(template, 'AWS::IAM::Role').filter(([id]) => id.startsWith('RealtimeIotDataEndpoint'))).toEqual(
      [],
    );
    expect(
      resources(template, 'AWS::Logs::LogGroup').filter(([id]) => id.startsWith('RealtimeIotDataEndpoint')),
    ).toEqual([]);
  });

  it('reaches every function that publishes, as an https URL', () => {
    const { template, functionIds } = synth();
    const [[lookupId]] = resources(template, 'Custom::AWS') as [[string, Resource]];
    const url = { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [lookupId, 'endpointAddress'] }]] };

    for (const handler of ['ws-routes', IOT_HANDLERS.ingress, IOT_HANDLERS.presence] as const) {
      expect(envOf(template, functionIds[handler])[ENV.iotEndpoint], handler).toEqual(url);
    }
    // The token sweeper closes WebSocket connections only: it never publishes.
    for (const handler of ['ws-authorizer', IOT_HANDLERS.authorizer, 'token-sweeper'] as const) {
      expect(envOf(template, functionIds[handler]), handler).not.toHaveProperty(ENV.iotEndpoint);
    }
  });
});

describe('Realtime MQTT: functions', () => {
  it('get exactly the variables their configuration requires', () => {
    const { template, functionIds, apiId, realtime, stack } = synth({
      userPoolClientIds: ['clientA', 'clientB'],
      tokenUse: ['id'],
    });
    const tableRef = { Ref: stack.getLogicalId(realtime.table.node.defaultChild as CfnElement) };
    const [[lookupId]] = resources(template, 'Custom::AWS') as [[string, Resource]];
    const common = { [ENV.logLevel]: 'info', NODE_OPTIONS: '--enable-source-maps' };

    expect(envOf(template, functionIds[IOT_HANDLERS.authorizer])).toEqual({
      ...common,
      [ENV.tableName]: tableRef,
      [ENV.userPoolId]: POOL_ID,
      [ENV.clientIds]: 'clientA,clientB',
      [ENV.tokenUse]: 'id',
      [ENV.iotAccountId]: { Ref: 'AWS::AccountId' },
    });
    const ruleEnv = {
      ...common,
      [ENV.tableName]: tableRef,
      [ENV.iotEndpoint]: { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [lookupId, 'endpointAddress'] }]] },
      // The stage's @connections URL: rule events carry no API Gateway domain to build it from.
      [ENV.connectionsEndpoint]: {
        'Fn::Join': [
          '',
          [
            'https://',
            { Ref: apiId },
            '.execute-api.',
            { Ref: 'AWS::Region' },
            '.',
            { Ref: 'AWS::URLSuffix' },
            '/prod',
          ],
        ],
      },
    };
    // Ingress runs clients' requests, `announce` included, which may split a large audience onto the queue.
    const queueUrl = { Ref: stack.getLogicalId(realtime.fanout.queue.node.defaultChild as CfnElement) };
    expect(envOf(template, functionIds[IOT_HANDLERS.ingress])).toEqual({ ...ruleEnv, [ENV.fanoutQueueUrl]: queueUrl });
    expect(envOf(template, functionIds[IOT_HANDLERS.presence])).toEqual(ruleEnv);
  });

  it('publish only to the topics the server writes: room topics, inboxes, announcements, answers from ingress', () => {
    const { template, roleId } = synth();
    const rooms = stackArn('iot', ':topic/rt/users/*/rooms/*');
    const responses = stackArn('iot', ':topic/rt/users/*/responses');
    const inbox = stackArn('iot', ':topic/rt/users/*/inbox');
    const announcements = stackArn('iot', ':topic/rt/announcements');
    const groups = stackArn('iot', ':topic/rt/announcements/groups/*');
    const sorted = (arns: unknown[]) => arns.toSorted((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const deliveries = sorted([rooms, inbox, announcements, groups]);
    const publishOf = (id: string | undefined) =>
      statementsOfRole(template, id)
        .filter((s) => actionsOf(s).some((a) => a.startsWith('iot:')))
        .map((s: PolicyStatement) => ({
          actions: actionsOf(s),
          resources: [s.Resource].flat().toSorted((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
        }));

    // The functions that deliver notifications and announcements (routes and ingress run clients' `announce`,
    // the worker delivers queued batches) publish to the inbox and announcement topics as well.
    expect(publishOf(roleId('ws-routes'))).toEqual([{ actions: ['iot:Publish'], resources: deliveries }]);
    expect(publishOf(roleId(IOT_HANDLERS.ingress))).toEqual([
      { actions: ['iot:Publish'], resources: sorted([...deliveries, responses]) },
    ]);
    expect(publishOf(roleId('fanout-worker'))).toEqual([{ actions: ['iot:Publish'], resources: deliveries }]);
    expect(publishOf(roleId(IOT_HANDLERS.presence))).toEqual([{ actions: ['iot:Publish'], resources: [rooms] }]);
    expect(publishOf(roleId(IOT_HANDLERS.authorizer))).toEqual([]);
    expect(publishOf(roleId('ws-authorizer'))).toEqual([]);
    expect(publishOf(roleId('token-sweeper'))).toEqual([]);

    // No one may publish to a client-to-server topic (it would run the ingress rule as the server).
    const published = JSON.stringify(allPolicyStatements(template).filter((s) => actionsOf(s).includes('iot:Publish')));
    expect(published).not.toContain('requests');
    expect(published).not.toContain('/send');
    expect(published).not.toMatch(/topic\/rt\/\*|topic\/\*|topic\/rt\/users\/\*"/);
  });
});

describe('Realtime with mqtt: false', () => {
  it('deploys no IoT resource, no IoT function, and grants no IoT action', () => {
    const { template, realtime, functionIds } = synth({ mqtt: false });

    expect(realtime.mqtt).toBeUndefined();
    for (const type of ['AWS::IoT::Authorizer', 'AWS::IoT::TopicRule', 'Custom::AWS']) {
      template.resourceCountIs(type, 0);
    }
    expect(iotPermissions(template)).toEqual([]);
    expect(Object.keys(template.findResources('AWS::Lambda::Function')).toSorted()).toEqual(
      Object.values(functionIds).toSorted(),
    );
    expect(Object.keys(functionIds).toSorted()).toEqual([
      'fanout-worker',
      'token-sweeper',
      'ws-authorizer',
      'ws-routes',
    ]);
    expect(envOf(template, functionIds['ws-routes'])).not.toHaveProperty(ENV.iotEndpoint);
    expect(envOf(template, functionIds['fanout-worker'])).not.toHaveProperty(ENV.iotEndpoint);
    expect(realtime.publisherEnvironment).not.toHaveProperty(ENV.iotEndpoint);
    expect(
      allPolicyStatements(template)
        .flatMap(actionsOf)
        .filter((a) => a.startsWith('iot:')),
    ).toEqual([]);
    expect(resources(template, 'AWS::IAM::Role').filter(([id]) => id.includes('Iot'))).toEqual([]);
  });
});

describe('VibaRealtimeStack MQTT outputs', () => {
  it('outputs the MQTT endpoint host and the authorizer name', () => {
    const stack = new VibaRealtimeStack(newApp(), 'VibaRealtimeStack', {
      userPoolId: POOL_ID,
      userPoolClientIds: ['clientA'],
    });
    const template = Template.fromStack(stack);
    const [[lookupId]] = resources(template, 'Custom::AWS') as [[string, Resource]];

    template.hasOutput('MqttEndpoint', { Value: { 'Fn::GetAtt': [lookupId, 'endpointAddress'] } });
    template.hasOutput('IotAuthorizerName', { Value: stack.realtime.mqtt?.authorizerName });
    expect(stack.realtime.mqtt?.authorizerName).toMatch(/^VibaRealtimeStackRealtime[0-9A-F]{8}_authorizer$/);
    template.hasOutput('WebSocketUrl', {});
    template.hasOutput('TableName', {});
    template.hasOutput('FanoutQueueUrl', {});
  });

  it('outputs neither with mqtt: false', () => {
    const stack = new VibaRealtimeStack(newApp(), 'VibaRealtimeStack', {
      userPoolId: POOL_ID,
      userPoolClientIds: ['clientA'],
      mqtt: false,
    });
    const outputs = Object.keys(Template.fromStack(stack).toJSON().Outputs ?? {});

    expect(outputs.toSorted()).toEqual(['ClientConfig', 'FanoutQueueUrl', 'TableName', 'WebSocketUrl']);
  });
});
