/** What the infra tests share: an app with the real cdk.json context, a synthesized `Realtime`, and template
 * readers. Bundling is skipped: the tests are about the template; esbuild is exercised by `cdk synth`. */
import { readFileSync } from 'node:fs';
import { IOT_HANDLERS, type IotHandlerName, WS_HANDLERS, type WsHandlerName } from '@viba-realtime/protocol';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { FANOUT_WORKER_HANDLER, Realtime, type RealtimeProps } from '../src/realtime.js';

export type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
export type PolicyStatement = { Action: string | string[]; Effect: string; Resource: unknown; Condition?: unknown };

export const POOL_ID = 'eu-west-1_AbCdEf123';

/** The app's own context (feature flags included), so the tests see the template `cdk synth` makes. */
const CDK_CONTEXT = (JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as { context: object })
  .context;

export function newApp(): App {
  return new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
}

export type HandlerName = WsHandlerName | IotHandlerName | typeof FANOUT_WORKER_HANDLER;

/** Logical ids of the construct's functions, by handler name (the IoT ones only with the MQTT channel on). */
export type FunctionIds = Record<WsHandlerName | typeof FANOUT_WORKER_HANDLER, string> &
  Partial<Record<IotHandlerName, string>>;

export function synth(props: Partial<RealtimeProps> = {}) {
  const stack = new Stack(newApp(), 'TestStack');
  const realtime = new Realtime(stack, 'Realtime', { userPool: POOL_ID, userPoolClientIds: ['clientA'], ...props });
  const template = Template.fromStack(stack);
  const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const functionIds: FunctionIds = {
    [WS_HANDLERS.authorizer]: logicalId(realtime.authorizerFunction),
    [WS_HANDLERS.routes]: logicalId(realtime.routesFunction),
    [FANOUT_WORKER_HANDLER]: logicalId(realtime.fanout.workerFunction),
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
