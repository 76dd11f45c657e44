import { ENV, ROUTE_SELECTION_EXPRESSION, TABLE, WS_HANDLERS, WS_ROUTES } from '@viba-realtime/protocol';
import { type CfnElement, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import type { Role } from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { Realtime, type RealtimeProps, ROUTES_TABLE_ACTIONS } from '../src/realtime.js';
import { VibaRealtimeStack } from '../src/stack.js';
import {
  actionsOf,
  allPolicyStatements,
  connectionsOf,
  envOf,
  logWriteStatement,
  newApp,
  POOL_ID,
  type PolicyStatement,
  permissionsOf,
  type Resource,
  resources,
  statementsOfRole,
  synth,
  tableArns,
  tablePermissions,
} from './support.js';

describe('Realtime table', () => {
  it('has exactly the key schema, TTL and index of the protocol TABLE', () => {
    const { template } = synth();

    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    const gsi = TABLE.indexes.gsi1;
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: gsi.name,
          KeySchema: [
            { AttributeName: gsi.partitionKey, KeyType: 'HASH' },
            { AttributeName: gsi.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: TABLE.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE.sortKey, AttributeType: 'S' },
        { AttributeName: gsi.partitionKey, AttributeType: 'S' },
        { AttributeName: gsi.sortKey, AttributeType: 'S' },
      ]),
    });
  });

  it('is on-demand, point-in-time recoverable, encrypted with the AWS managed key and retained by default', () => {
    const { template } = synth();

    template.hasResource('AWS::DynamoDB::Table', {
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('follows removalPolicy when given', () => {
    const { template } = synth({ removalPolicy: RemovalPolicy.DESTROY });

    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });
});

describe('Realtime WebSocket API', () => {
  it('selects routes with the protocol expression', () => {
    const { template } = synth();

    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: ROUTE_SELECTION_EXPRESSION,
    });
  });

  it('has exactly one route per WS_ROUTES entry', () => {
    const { template } = synth();

    const routeKeys = resources(template, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(routeKeys.toSorted()).toEqual(WS_ROUTES.map((r) => r.routeKey).toSorted());
  });

  it('integrates each route with the function its handler names, and returns a response only where asked', () => {
    const { template, functionIds } = synth();
    const integrations = template.findResources('AWS::ApiGatewayV2::Integration') as Record<string, Resource>;
    const routes = resources(template, 'AWS::ApiGatewayV2::Route');
    const routeResponses = resources(template, 'AWS::ApiGatewayV2::RouteResponse');

    for (const definition of WS_ROUTES) {
      const [routeId, route] = routes.find(([, r]) => r.Properties.RouteKey === definition.routeKey) ?? [];
      expect(route, definition.routeKey).toBeDefined();
      const target = JSON.stringify(route?.Properties.Target);
      const [integrationId] = Object.keys(integrations).filter((id) => target.includes(id));
      const integration = integrations[integrationId ?? ''];
      expect(integration?.Properties.IntegrationType, definition.routeKey).toBe('AWS_PROXY');
      expect(JSON.stringify(integration?.Properties.IntegrationUri), definition.routeKey).toContain(
        functionIds[definition.handler],
      );

      const hasResponse = routeResponses.some(([, rr]) =>
        JSON.stringify(rr.Properties.RouteId).includes(routeId ?? '?'),
      );
      expect(hasResponse, definition.routeKey).toBe(definition.returnResponse);
      expect(route?.Properties.RouteResponseSelectionExpression, definition.routeKey).toBe(
        definition.returnResponse ? '$default' : undefined,
      );
    }
  });

  it('runs one REQUEST authorizer with no identity source, on exactly the authorized routes', () => {
    const { template, functionIds } = synth();

    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 1);
    const [[authorizerId, authorizer]] = resources(template, 'AWS::ApiGatewayV2::Authorizer') as [[string, Resource]];
    expect(authorizer.Properties.AuthorizerType).toBe('REQUEST');
    // Deliberately none (docs/ARCHITECTURE.md, "Authorizer without identity source"): an identity source
    // (`route.request.querystring.token`) would make API Gateway answer 401 itself whenever the query string
    // lacks the token, refusing Node clients that send it in the Authorization header, and would take the
    // 401 (no token) vs 403 (bad token) decision away from the authorizer.
    expect(authorizer.Properties.IdentitySource).toEqual([]);
    expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(functionIds[WS_HANDLERS.authorizer]);

    const authorizedKeys = WS_ROUTES.filter((r) => r.authorized).map((r) => r.routeKey);
    expect(authorizedKeys).toEqual(['$connect']);
    for (const [, route] of resources(template, 'AWS::ApiGatewayV2::Route')) {
      const authorized = authorizedKeys.includes(route.Properties.RouteKey as (typeof authorizedKeys)[number]);
      expect(route.Properties.AuthorizationType, String(route.Properties.RouteKey)).toBe(
        authorized ? 'CUSTOM' : 'NONE',
      );
      expect(route.Properties.AuthorizerId, String(route.Properties.RouteKey)).toEqual(
        authorized ? { Ref: authorizerId } : undefined,
      );
    }
  });

  it('deploys a throttled stage automatically, with JSON access logs', () => {
    const { template, realtime } = synth({ stageName: 'live' });

    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'live',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingBurstLimit: 500, ThrottlingRateLimit: 1000 },
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RealtimeAccessLogs'), 'Arn'] },
        Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"'),
      },
    });
    expect(realtime.stage.stageName).toBe('live');
  });

  it('leaves the account-wide API Gateway logging role alone unless asked', () => {
    synth().template.resourceCountIs('AWS::ApiGateway::Account', 0);

    const { template } = synth({ createApiGatewayLogRole: true });
    template.resourceCountIs('AWS::ApiGateway::Account', 1);
    const [[accountId]] = resources(template, 'AWS::ApiGateway::Account') as [[string, Resource]];
    const [[, stage]] = resources(template, 'AWS::ApiGatewayV2::Stage') as [[string, Resource]];
    expect(stage.DependsOn).toContain(accountId);
  });

  it('can turn access logs off', () => {
    const { template, realtime } = synth({ accessLogs: false });

    expect(realtime.accessLogGroup).toBeUndefined();
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { AccessLogSettings: Match.absent() });
  });
});

describe('Realtime functions', () => {
  it('run Node.js 22 on arm64 with JSON logs, 256 MB, and the timeouts of their integration', () => {
    const { template, functionIds } = synth();
    const functions = template.findResources('AWS::Lambda::Function') as Record<string, Resource>;

    // Ours, plus the provider of the IoT endpoint lookup (AwsCustomResource's singleton, not configurable).
    const ours = Object.values(functionIds);
    expect(ours).toHaveLength(7);
    const others = Object.keys(functions).filter((id) => !ours.includes(id));
    expect(others).toEqual([expect.stringMatching(/^AWS679f53fac002430cb0da5b7982bd2287/)]);
    for (const id of ours) {
      expect(functions[id]?.Properties, id).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        MemorySize: 256,
        Handler: 'index.handler',
        LoggingConfig: { LogFormat: 'JSON' },
      });
    }
    expect(functions[functionIds['ws-authorizer']]?.Properties.Timeout).toBe(10);
    expect(functions[functionIds['ws-routes']]?.Properties.Timeout).toBe(29);
    // IoT Core gives a custom authorizer 5 s; the rule Lambdas keep the send path's 29 s bound.
    expect(functions[functionIds['iot-authorizer'] ?? '']?.Properties.Timeout).toBe(5);
    expect(functions[functionIds['iot-ingress'] ?? '']?.Properties.Timeout).toBe(29);
    expect(functions[functionIds['iot-presence'] ?? '']?.Properties.Timeout).toBe(29);
    // Half the fan-out claim's staleness (LIMITS.fanoutClaimStaleMs), see fanout.test.ts.
    expect(functions[functionIds['fanout-worker']]?.Properties.Timeout).toBe(60);
    // A run closes at most LIMITS.tokenSweepMaxPerRun connections; see schedules.test.ts.
    expect(functions[functionIds['token-sweeper']]?.Properties.Timeout).toBe(60);
  });

  it('are configured only through the protocol ENV names', () => {
    const { template, functionIds } = synth({
      userPoolClientIds: ['clientA', 'clientB'],
      tokenUse: ['access'],
      logLevel: 'debug',
    });
    const allowed = new Set<string>([...Object.values(ENV), 'NODE_OPTIONS']);

    for (const [handler, id] of Object.entries(functionIds)) {
      const env = envOf(template, id);
      for (const name of Object.keys(env)) expect(allowed, `${handler}: ${name}`).toContain(name);
      // Endpoint overrides are for the emulator: in AWS the SDK's defaults are right.
      expect(env, handler).not.toHaveProperty(ENV.dynamodbEndpoint);
      expect(env, handler).not.toHaveProperty(ENV.sqsEndpoint);
      expect(env, handler).not.toHaveProperty(ENV.jwksUri);
      expect(env[ENV.logLevel], handler).toBe('debug');
    }
    // The WebSocket handlers take the @connections endpoint from API Gateway's event.
    for (const handler of Object.values(WS_HANDLERS)) {
      expect(envOf(template, functionIds[handler])).not.toHaveProperty(ENV.connectionsEndpoint);
    }
    expect(envOf(template, functionIds[WS_HANDLERS.authorizer])).toMatchObject({
      [ENV.userPoolId]: POOL_ID,
      [ENV.clientIds]: 'clientA,clientB',
      [ENV.tokenUse]: 'access',
    });
    expect(envOf(template, functionIds[WS_HANDLERS.authorizer])).not.toHaveProperty(ENV.tableName);
    expect(envOf(template, functionIds[WS_HANDLERS.routes])[ENV.tableName]).toEqual({
      Ref: expect.stringMatching(/^RealtimeTable/),
    });
  });

  it('accepts both token uses by default and a user pool object', () => {
    const stack = new Stack(newApp(), 'PoolStack');
    const userPool = new UserPool(stack, 'Pool');
    const realtime = new Realtime(stack, 'Realtime', { userPool, userPoolClientIds: ['clientA'] });
    const template = Template.fromStack(stack);
    const poolRef = { Ref: stack.getLogicalId(userPool.node.defaultChild as CfnElement) };

    for (const fn of [realtime.authorizerFunction, realtime.mqtt?.authorizerFunction]) {
      const env = envOf(template, stack.getLogicalId(fn?.node.defaultChild as CfnElement));
      expect(env[ENV.tokenUse]).toBe('id,access');
      expect(env[ENV.userPoolId]).toEqual(poolRef);
    }
  });
});

describe('Realtime IAM', () => {
  it('grants no wildcard action anywhere', () => {
    const { template } = synth({ createApiGatewayLogRole: true });

    for (const statement of allPolicyStatements(template)) {
      for (const action of actionsOf(statement)) {
        expect(action).not.toContain('*');
      }
    }
  });

  it('grants on the `*` resource only actions that have no resource-level permissions', () => {
    const { template } = synth({ createApiGatewayLogRole: true });

    const onEverything = allPolicyStatements(template).filter((s) => [s.Resource].flat().includes('*'));
    expect(onEverything.flatMap(actionsOf)).toEqual(['iot:DescribeEndpoint']);
  });

  it('gives each function only the table actions it uses, on the table, and Query on its index by name', () => {
    const { template, realtime, stack, roleId } = synth();
    const tableId = stack.getLogicalId(realtime.table.node.defaultChild as CfnElement);
    const isDynamo = (s: PolicyStatement) => actionsOf(s).some((a) => a.startsWith('dynamodb:'));
    const dynamoOf = (id: string | undefined) => permissionsOf(statementsOfRole(template, id).filter(isDynamo));

    // Spelled out rather than read from the constants, so that widening a grant fails here.
    const routesActions = [
      'dynamodb:BatchWriteItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ];
    expect(dynamoOf(roleId('ws-routes'))).toEqual(tablePermissions(tableId, routesActions));
    expect([...ROUTES_TABLE_ACTIONS].toSorted()).toEqual(routesActions);
    // The ingress rule runs the same requests as the routes function; the fan-out worker claims, checkpoints
    // and completes batches, and cleans up gone connections as every delivery does.
    expect(dynamoOf(roleId('iot-ingress'))).toEqual(tablePermissions(tableId, routesActions));
    expect(dynamoOf(roleId('fanout-worker'))).toEqual(tablePermissions(tableId, routesActions));
    expect(dynamoOf(roleId('iot-presence'))).toEqual(
      tablePermissions(tableId, [
        'dynamodb:BatchWriteItem',
        'dynamodb:DeleteItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]),
    );
    expect(dynamoOf(roleId('iot-authorizer'))).toEqual(tablePermissions(tableId, ['dynamodb:Query']));
    expect(dynamoOf(roleId('ws-authorizer'))).toEqual({});
    // The token sweeper queries the index only (expired tokens, a gone connection's subscriptions) and removes a
    // connection found gone: no Query on the table, no Put or Update.
    const { table: tableArn, index: indexArn } = tableArns(tableId);
    expect(dynamoOf(roleId('token-sweeper'))).toEqual({
      'dynamodb:BatchWriteItem': [tableArn],
      'dynamodb:DeleteItem': [tableArn],
      'dynamodb:GetItem': [tableArn],
      'dynamodb:Query': [indexArn],
    });

    // Nothing on `index/*` or any other table, and only the six functions above hold any DynamoDB action.
    const { table, index } = tableArns(tableId);
    const dynamo = allPolicyStatements(template).filter(isDynamo);
    for (const s of dynamo) expect([table, index]).toEqual(expect.arrayContaining([s.Resource].flat()));
    expect(JSON.stringify(dynamo)).not.toContain('index/*');
  });

  it('scopes ManageConnections to this API and stage, for the functions that deliver to WebSocket members', () => {
    const { template, apiId, roleId } = synth();
    const expected = {
      Action: 'execute-api:ManageConnections',
      Effect: 'Allow',
      Resource: connectionsOf(apiId).arn,
    };

    const statements = allPolicyStatements(template).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('execute-api:')),
    );
    expect(statements).toEqual([expected, expected, expected, expected, expected]);
    for (const handler of ['ws-routes', 'iot-ingress', 'iot-presence', 'fanout-worker', 'token-sweeper'] as const) {
      expect(statementsOfRole(template, roleId(handler)), handler).toContainEqual(expected);
    }
  });

  it('gives the WebSocket authorizer no data access: it may only write its own logs', () => {
    const { template, realtime, stack } = synth();
    const roleId = stack.getLogicalId(realtime.authorizerFunction.role?.node.defaultChild as CfnElement);
    const logGroupId = stack.getLogicalId(realtime.authorizerFunction.logGroup.node.defaultChild as CfnElement);

    expect(statementsOfRole(template, roleId)).toEqual([logWriteStatement(logGroupId)]);
    const role = template.toJSON().Resources[roleId] as Resource;
    expect(role.Properties.Policies).toBeUndefined();
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('gives every function a role of its own that Lambda assumes, with no managed policy, writing only its log group', () => {
    const { template, realtime, stack } = synth();
    const idOf = (construct: { node: { defaultChild?: unknown } }) =>
      stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const functions = Object.values(realtime.functions);

    expect(functions).toHaveLength(7);
    const roleIds = new Set(functions.map((fn) => idOf(fn.role as Role)));
    expect(roleIds.size).toBe(functions.length);
    for (const fn of functions) {
      const role = template.toJSON().Resources[idOf(fn.role as Role)] as Resource;
      expect(role.Properties.ManagedPolicyArns, fn.node.path).toBeUndefined();
      expect(role.Properties.AssumeRolePolicyDocument, fn.node.path).toEqual({
        Version: '2012-10-17',
        Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
      });
      const logs = statementsOfRole(template, idOf(fn.role as Role)).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('logs:')),
      );
      expect(logs, fn.node.path).toEqual([logWriteStatement(idOf(fn.logGroup))]);
    }
  });
});

describe('Realtime props validation', () => {
  const build = (props: Partial<RealtimeProps>) => () => synth(props);

  it('requires at least one client id', () => {
    expect(build({ userPoolClientIds: [] })).toThrow(/userPoolClientIds must list at least one app client id/);
  });

  it('rejects client ids that would break the comma-joined list', () => {
    expect(build({ userPoolClientIds: ['a,b'] })).toThrow(/invalid client id "a,b"/);
    expect(build({ userPoolClientIds: [' '] })).toThrow(/invalid client id/);
  });

  it('rejects what is not a user pool id', () => {
    expect(build({ userPool: 'not a pool' })).toThrow(/is not a Cognito user pool id/);
  });

  it('rejects an empty or unknown token use', () => {
    expect(build({ tokenUse: [] })).toThrow(/tokenUse must be a non-empty list/);
    expect(build({ tokenUse: ['refresh' as 'id'] })).toThrow(/tokenUse/);
  });

  it('rejects an invalid stage name', () => {
    expect(build({ stageName: 'a/b' })).toThrow(/stageName "a\/b"/);
  });

  it('rejects throttle values API Gateway would refuse or that would block every message', () => {
    for (const rateLimit of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(build({ throttle: { rateLimit } }), String(rateLimit)).toThrow(
        /throttle.rateLimit must be a positive number of requests per second/,
      );
    }
    for (const burstLimit of [0, -5, 2.5, Number.NaN]) {
      expect(build({ throttle: { burstLimit } }), String(burstLimit)).toThrow(
        /throttle.burstLimit must be a whole number of requests, at least 1/,
      );
    }
  });

  it('keeps the default of a throttle setting left out', () => {
    const { template } = synth({ throttle: { rateLimit: 50 } });

    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 500 },
    });
  });

  it('rejects the SNAPSHOT removal policy, which neither the table nor the log groups support', () => {
    expect(build({ removalPolicy: RemovalPolicy.SNAPSHOT })).toThrow(/removalPolicy SNAPSHOT is not supported/);
  });

  it('rejects creating the account log role with access logs off', () => {
    expect(build({ accessLogs: false, createApiGatewayLogRole: true })).toThrow(
      /createApiGatewayLogRole only serves the access logs/,
    );
  });
});

describe('VibaRealtimeStack', () => {
  it('outputs the WebSocket URL and the table name, and creates the logging role by default', () => {
    const stack = new VibaRealtimeStack(newApp(), 'VibaRealtimeStack', {
      userPoolId: POOL_ID,
      userPoolClientIds: ['clientA'],
    });
    const template = Template.fromStack(stack);
    const apiId = stack.getLogicalId(stack.realtime.webSocketApi.node.defaultChild as CfnElement);
    const tableId = stack.getLogicalId(stack.realtime.table.node.defaultChild as CfnElement);

    template.hasOutput('WebSocketUrl', {
      Value: { 'Fn::Join': ['', Match.arrayWith(['wss://', { Ref: apiId }, '/prod'])] },
    });
    template.hasOutput('TableName', { Value: { Ref: tableId } });
    template.resourceCountIs('AWS::ApiGateway::Account', 1);
    // Environment-agnostic: synth must work with no account or credentials.
    expect(stack.environment).toBe('aws://unknown-account/unknown-region');
  });
});
