import { readFileSync } from 'node:fs';
import {
  ENV,
  ROUTE_SELECTION_EXPRESSION,
  TABLE,
  WS_HANDLERS,
  WS_ROUTES,
  type WsHandlerName,
} from '@viba-realtime/protocol';
import { App, type CfnElement, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import { describe, expect, it } from 'vitest';
import { Realtime, type RealtimeProps, ROUTES_TABLE_ACTIONS } from '../src/realtime.js';
import { VibaRealtimeStack } from '../src/stack.js';

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
type PolicyStatement = { Action: string | string[]; Effect: string; Resource: unknown };

const POOL_ID = 'eu-west-1_AbCdEf123';

/** The app's own context (feature flags included), so the tests see the template `cdk synth` makes. */
const CDK_CONTEXT = (JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as { context: object })
  .context;

/** Bundling is skipped: these tests are about the template, and esbuild is exercised by `cdk synth`. */
function newApp(): App {
  return new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
}

function synth(props: Partial<RealtimeProps> = {}) {
  const stack = new Stack(newApp(), 'TestStack');
  const realtime = new Realtime(stack, 'Realtime', { userPool: POOL_ID, userPoolClientIds: ['clientA'], ...props });
  const template = Template.fromStack(stack);
  const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const functionIds: Record<WsHandlerName, string> = {
    [WS_HANDLERS.authorizer]: logicalId(realtime.authorizerFunction),
    [WS_HANDLERS.routes]: logicalId(realtime.routesFunction),
  };
  return { stack, realtime, template, functionIds, apiId: logicalId(realtime.webSocketApi) };
}

function resources(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.findResources(type) as Record<string, Resource>);
}

function allPolicyStatements(template: Template): PolicyStatement[] {
  const inline = resources(template, 'AWS::IAM::Policy').flatMap(
    ([, r]) => (r.Properties.PolicyDocument as { Statement: PolicyStatement[] }).Statement,
  );
  const onRoles = resources(template, 'AWS::IAM::Role').flatMap(([, r]) =>
    ((r.Properties.Policies ?? []) as { PolicyDocument: { Statement: PolicyStatement[] } }[]).flatMap(
      (p) => p.PolicyDocument.Statement,
    ),
  );
  return [...inline, ...onRoles];
}

const actionsOf = (statement: PolicyStatement) => [statement.Action].flat();

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
    // An identity source would make API Gateway answer 401 itself whenever that one place is empty.
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

    expect(Object.keys(functions).toSorted()).toEqual(Object.values(functionIds).toSorted());
    for (const fn of Object.values(functions)) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        MemorySize: 256,
        Handler: 'index.handler',
        LoggingConfig: { LogFormat: 'JSON' },
      });
    }
    expect(functions[functionIds[WS_HANDLERS.authorizer]]?.Properties.Timeout).toBe(10);
    expect(functions[functionIds[WS_HANDLERS.routes]]?.Properties.Timeout).toBe(29);
  });

  it('are configured only through the protocol ENV names', () => {
    const { template, functionIds } = synth({
      userPoolClientIds: ['clientA', 'clientB'],
      tokenUse: ['access'],
      logLevel: 'debug',
    });
    const functions = template.findResources('AWS::Lambda::Function') as Record<string, Resource>;
    const envOf = (handler: WsHandlerName) => {
      const environment = functions[functionIds[handler]]?.Properties.Environment as
        | { Variables: Record<string, unknown> }
        | undefined;
      return environment?.Variables ?? {};
    };
    const allowed = new Set<string>([...Object.values(ENV), 'NODE_OPTIONS']);

    for (const handler of Object.values(WS_HANDLERS)) {
      for (const name of Object.keys(envOf(handler))) expect(allowed, `${handler}: ${name}`).toContain(name);
      // Endpoint overrides are for the emulator: in AWS the SDK's defaults and the event are right.
      expect(envOf(handler)).not.toHaveProperty(ENV.dynamodbEndpoint);
      expect(envOf(handler)).not.toHaveProperty(ENV.connectionsEndpoint);
      expect(envOf(handler)).not.toHaveProperty(ENV.jwksUri);
      expect(envOf(handler)[ENV.logLevel]).toBe('debug');
    }
    expect(envOf(WS_HANDLERS.authorizer)).toMatchObject({
      [ENV.userPoolId]: POOL_ID,
      [ENV.clientIds]: 'clientA,clientB',
      [ENV.tokenUse]: 'access',
    });
    expect(envOf(WS_HANDLERS.authorizer)).not.toHaveProperty(ENV.tableName);
    expect(envOf(WS_HANDLERS.routes)[ENV.tableName]).toEqual({ Ref: expect.stringMatching(/^RealtimeTable/) });
  });

  it('accepts both token uses by default and a user pool object', () => {
    const stack = new Stack(newApp(), 'PoolStack');
    const userPool = new UserPool(stack, 'Pool');
    const realtime = new Realtime(stack, 'Realtime', { userPool, userPoolClientIds: ['clientA'] });
    const template = Template.fromStack(stack);

    const authorizerId = stack.getLogicalId(realtime.authorizerFunction.node.defaultChild as CfnElement);
    const env = (template.toJSON().Resources[authorizerId] as Resource).Properties.Environment as {
      Variables: Record<string, unknown>;
    };
    expect(env.Variables[ENV.tokenUse]).toBe('id,access');
    expect(env.Variables[ENV.userPoolId]).toEqual({
      Ref: stack.getLogicalId(userPool.node.defaultChild as CfnElement),
    });
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

  it('gives the routes function only the table actions it uses, on the table and its indexes', () => {
    const { template, realtime, stack } = synth();
    const roleId = stack.getLogicalId(realtime.routesFunction.role?.node.defaultChild as CfnElement);
    const tableId = stack.getLogicalId(realtime.table.node.defaultChild as CfnElement);

    const dynamoStatements = allPolicyStatements(template).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('dynamodb:')),
    );
    expect(dynamoStatements).toHaveLength(1);
    // Spelled out rather than read from ROUTES_TABLE_ACTIONS, so that widening the grant fails here.
    expect(actionsOf(dynamoStatements[0] as PolicyStatement).toSorted()).toEqual([
      'dynamodb:BatchWriteItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    expect([...ROUTES_TABLE_ACTIONS].toSorted()).toEqual(actionsOf(dynamoStatements[0] as PolicyStatement).toSorted());
    expect(dynamoStatements[0]?.Resource).toEqual([
      { 'Fn::GetAtt': [tableId, 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, '/index/*']] },
    ]);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: roleId }],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['dynamodb:Query']) })]),
      },
    });
  });

  it('scopes ManageConnections to this API and stage', () => {
    const { template, apiId } = synth();

    const statements = allPolicyStatements(template).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('execute-api:')),
    );
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0] as PolicyStatement)).toEqual(['execute-api:ManageConnections']);
    expect(statements[0]?.Resource).toEqual({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':execute-api:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':',
          { Ref: apiId },
          '/prod/*/@connections/*',
        ],
      ],
    });
  });

  it('gives the authorizer no data access', () => {
    const { template, realtime, stack } = synth();
    const roleId = stack.getLogicalId(realtime.authorizerFunction.role?.node.defaultChild as CfnElement);

    const attached = resources(template, 'AWS::IAM::Policy').filter(([, p]) =>
      JSON.stringify(p.Properties.Roles).includes(roleId),
    );
    expect(attached).toEqual([]);
    const role = template.toJSON().Resources[roleId] as Resource;
    expect(role.Properties.Policies).toBeUndefined();
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
