/** What the infra tests share: an app with the real cdk.json context, a synthesized `Realtime` or app stack
 * (each cached per test file and props: a synth takes about a second), and template readers. Bundling is
 * skipped: the tests are about the template; esbuild is exercised by `cdk synth`. */
import { readFileSync } from 'node:fs';
import { IOT_HANDLERS, type IotHandlerName, WS_HANDLERS, type WsHandlerName } from '@viba-realtime/protocol';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { FANOUT_WORKER_HANDLER, Realtime, type RealtimeProps, TOKEN_SWEEPER_HANDLER } from '../src/realtime.js';
import { VibaRealtimeStack, type VibaRealtimeStackProps } from '../src/stack.js';

export type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
export type PolicyStatement = { Action: string | string[]; Effect: string; Resource: unknown; Condition?: unknown };

export const POOL_ID = 'eu-west-1_AbCdEf123';

/** The app's own context (feature flags included), so the tests see the template `cdk synth` makes. */
const CDK_CONTEXT = (JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as { context: object })
  .context;

/**
 * An app for template tests. The built-in CloudFormation validation (cfn-guard, compiled from WebAssembly on
 * first use: about 2 s per test file) is off here; app.test.ts and `cdk synth` in CI run it on the app.
 */
export function newApp(): App {
  return new App({
    context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  });
}

export type HandlerName = WsHandlerName | IotHandlerName | typeof FANOUT_WORKER_HANDLER | typeof TOKEN_SWEEPER_HANDLER;

/** Logical ids of the construct's functions, by handler name (the IoT ones only with the MQTT channel on). */
export type FunctionIds = Record<WsHandlerName | typeof FANOUT_WORKER_HANDLER | typeof TOKEN_SWEEPER_HANDLER, string> &
  Partial<Record<IotHandlerName, string>>;

/** A cache key for plain props (numbers as text, so NaN is not null); undefined for props that are not plain. */
function cacheKey(props: object): string | undefined {
  try {
    return JSON.stringify(props, (_key, value: unknown) => (typeof value === 'number' ? `n:${value}` : value));
  } catch {
    return undefined;
  }
}

function cached<T>(cache: Map<string, T>, props: object, make: () => T): T {
  const key = cacheKey(props);
  const hit = key === undefined ? undefined : cache.get(key);
  if (hit) return hit;
  const made = make();
  if (key !== undefined) cache.set(key, made);
  return made;
}

const synthCache = new Map<string, ReturnType<typeof synthUncached>>();

/**
 * A stack holding one `Realtime` with these props, synthesized. The same props return the same result within
 * a test file: treat it as read-only (add nothing to its stack; build a new one for that).
 */
export function synth(props: Partial<RealtimeProps> = {}) {
  return cached(synthCache, props, () => synthUncached(props));
}

const appStackCache = new Map<string, ReturnType<typeof synthAppStackUncached>>();

/** The deployable app's stack (`VibaRealtimeStack`, as bin/app.ts builds it), synthesized; cached like {@link synth}. */
export function synthAppStack(props: Partial<VibaRealtimeStackProps> = {}) {
  return cached(appStackCache, props, () => synthAppStackUncached(props));
}

function synthAppStackUncached(props: Partial<VibaRealtimeStackProps>) {
  const stack = new VibaRealtimeStack(newApp(), 'VibaRealtimeStack', {
    userPoolId: POOL_ID,
    userPoolClientIds: ['clientA'],
    ...props,
  });
  return { stack, template: Template.fromStack(stack), idOf: logicalIdIn(stack) };
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalIdIn(stack: Stack) {
  return (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

function synthUncached(props: Partial<RealtimeProps>) {
  const stack = new Stack(newApp(), 'TestStack');
  const realtime = new Realtime(stack, 'Realtime', { userPool: POOL_ID, userPoolClientIds: ['clientA'], ...props });
  const template = Template.fromStack(stack);
  const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const functionIds: FunctionIds = {
    [WS_HANDLERS.authorizer]: logicalId(realtime.authorizerFunction),
    [WS_HANDLERS.routes]: logicalId(realtime.routesFunction),
    [FANOUT_WORKER_HANDLER]: logicalId(realtime.fanout.workerFunction),
    [TOKEN_SWEEPER_HANDLER]: logicalId(realtime.tokenSweeperFunction),
    ...(realtime.mqtt
      ? {
          [IOT_HANDLERS.authorizer]: logicalId(realtime.mqtt.authorizerFunction),
          [IOT_HANDLERS.ingress]: logicalId(realtime.mqtt.ingressFunction),
          [IOT_HANDLERS.presence]: logicalId(realtime.mqtt.presenceFunction),
        }
      : {}),
  };
  /** Logical id of a function's role. */
  const roleId = (handler: HandlerName) => {
    const fn = template.toJSON().Resources[functionIds[handler] ?? ''] as Resource | undefined;
    return ((fn?.Properties.Role as { 'Fn::GetAtt': [string, string] } | undefined)?.['Fn::GetAtt'] ?? [])[0];
  };
  return { stack, realtime, template, functionIds, roleId, apiId: logicalId(realtime.webSocketApi) };
}

export function resources(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.findResources(type) as Record<string, Resource>);
}

/** Every statement of every inline policy (`AWS::IAM::Policy` and a role's `Policies`). */
export function allPolicyStatements(template: Template): PolicyStatement[] {
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

/** The statements of the inline policies attached to one role. */
export function statementsOfRole(template: Template, roleId: string | undefined): PolicyStatement[] {
  return resources(template, 'AWS::IAM::Policy')
    .filter(([, p]) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap(([, r]) => (r.Properties.PolicyDocument as { Statement: PolicyStatement[] }).Statement);
}

export const actionsOf = (statement: PolicyStatement) => [statement.Action].flat();

const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));

/**
 * What statements allow, as `action -> resources` (sorted): the same whichever way IAM's policy minimization
 * merged or split the statements.
 */
export function permissionsOf(statements: PolicyStatement[]): Record<string, unknown[]> {
  const permissions: Record<string, unknown[]> = {};
  for (const statement of statements) {
    for (const action of actionsOf(statement)) {
      permissions[action] = [...(permissions[action] ?? []), ...[statement.Resource].flat()].toSorted(byJson);
    }
  }
  return permissions;
}

/** The table's ARN and its index's, as the grants render them. */
export function tableArns(tableId: string) {
  const table = { 'Fn::GetAtt': [tableId, 'Arn'] };
  return { table, index: { 'Fn::Join': ['', [table, '/index/gsi1']] } };
}

/** `actions` on the table, and `dynamodb:Query` on its index as well: what the construct's table grants allow. */
export function tablePermissions(tableId: string, actions: readonly string[]): Record<string, unknown[]> {
  const { table, index } = tableArns(tableId);
  return Object.fromEntries(
    actions.map((action) => [action, action === 'dynamodb:Query' ? [table, index].toSorted(byJson) : [table]]),
  );
}

/** The statement that lets a function's role write to its own log group, and nothing else of CloudWatch Logs. */
export function logWriteStatement(logGroupId: string): PolicyStatement {
  return {
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Effect: 'Allow',
    Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
  };
}

/** The environment variables of a function resource. */
export function envOf(template: Template, functionId: string | undefined): Record<string, unknown> {
  const fn = template.toJSON().Resources[functionId ?? ''] as Resource | undefined;
  const environment = fn?.Properties.Environment as { Variables: Record<string, unknown> } | undefined;
  return environment?.Variables ?? {};
}

/** `arn:${Partition}:{service}:${Region}:${AccountId}:{rest}` as CloudFormation renders it. */
export function stackArn(service: string, rest: string) {
  return {
    'Fn::Join': [
      '',
      ['arn:', { Ref: 'AWS::Partition' }, `:${service}:`, { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, rest],
    ],
  };
}

/** Stand-ins for the pseudo parameters when {@link evaluate} renders a template value. */
export const PSEUDO = {
  'AWS::Region': 'eu-west-1',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::AccountId': '123456789012',
};

/**
 * Renders a CloudFormation value as CloudFormation would, with {@link PSEUDO} for the pseudo parameters,
 * `<Id>` for a `Ref` and `<Id.Attribute>` for an `Fn::GetAtt`. Throws on any other intrinsic.
 */
export function evaluate(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = (value ?? {}) as Record<string, unknown>;
  if (typeof node.Ref === 'string') return PSEUDO[node.Ref as keyof typeof PSEUDO] ?? `<${node.Ref}>`;
  if (Array.isArray(node['Fn::GetAtt'])) return `<${(node['Fn::GetAtt'] as string[]).join('.')}>`;
  if (Array.isArray(node['Fn::Join'])) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(evaluate).join(delimiter);
  }
  throw new Error(`Cannot evaluate ${JSON.stringify(value)}`);
}

/** The stage's `@connections` URL (a handler's `VIBA_CONNECTIONS_ENDPOINT`) and the ARN `ManageConnections` is
 * scoped to, as the template renders them for the stage `prod`. */
export function connectionsOf(apiId: string) {
  return {
    url: {
      'Fn::Join': [
        '',
        ['https://', { Ref: apiId }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/prod'],
      ],
    },
    arn: {
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
    },
  };
}

/** Statements with their actions and resources sorted, in a stable order: equal whichever way IAM's policy
 * minimization merged or ordered them. */
export function normalizedStatements(statements: PolicyStatement[]) {
  const sorted = <T>(values: T[]) => values.toSorted(byJson);
  return sorted(
    statements.map((s) => ({
      Effect: s.Effect,
      Action: actionsOf(s).toSorted(),
      Resource: sorted([s.Resource].flat()),
      ...(s.Condition ? { Condition: s.Condition } : {}),
    })),
  );
}
