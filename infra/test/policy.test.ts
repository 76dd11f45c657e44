/**
 * A scan of every IAM policy of the app stack: no wildcard action anywhere, and a wildcard in a resource only
 * where the list below says why nothing narrower exists.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PolicyStatement as IamStatement, ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { actionsOf, type PolicyStatement, resources, synthAppStack } from './support.js';

/** Actions allowed on the `*` resource, each because it has no resource-level permissions. */
const STAR_RESOURCE_ACTIONS: Record<string, string> = {
  'iot:DescribeEndpoint':
    'The deploy-time lookup of the IoT data endpoint; the action names no resource (Service Authorization Reference).',
};

/** Resources with a wildcard, by their rendered ARN (`{Ref}`), each because the wildcard is a run-time value. */
function wildcardResources(apiId: string): Record<string, string> {
  const arn = (service: string, rest: string) =>
    `arn:{AWS::Partition}:${service}:{AWS::Region}:{AWS::AccountId}:${rest}`;
  return {
    [arn('execute-api', `{${apiId}}/prod/*/@connections/*`)]:
      'ManageConnections on this API and stage; the method (POST/GET/DELETE) and the connection id vary.',
    [arn('iot', 'topic/rt/users/*/rooms/*')]: "Room frames to a member's own topic: the Cognito sub and the room.",
    [arn('iot', 'topic/rt/users/*/responses')]: "Answers on the requester's own topic: the Cognito sub.",
    [arn('iot', 'topic/rt/users/*/inbox')]: "Notifications on the recipient's own topic: the Cognito sub.",
    [arn('iot', 'topic/rt/announcements/groups/*')]: 'Announcements to a Cognito group: the group name.',
  };
}

/** Managed policies allowed on a role, by role logical id prefix. */
const MANAGED_POLICIES: Record<string, string> = {
  // API Gateway creates the log groups it writes (any API's execution logs): nothing narrower can name them.
  RealtimeApiGatewayLogRole: 'service-role/AmazonAPIGatewayPushToCloudWatchLogs',
};

/** `{Ref}` / `{Id.Attr}` for references: a resource as one comparable string. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = (value ?? {}) as Record<string, unknown>;
  if (typeof node.Ref === 'string') return `{${node.Ref}}`;
  if (Array.isArray(node['Fn::GetAtt'])) return `{${(node['Fn::GetAtt'] as string[]).join('.')}}`;
  if (Array.isArray(node['Fn::Join'])) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(render).join(delimiter);
  }
  return JSON.stringify(value);
}

/** Every statement of the template's identity policies, with where it is. */
function identityStatements(template: Template): { where: string; statement: PolicyStatement }[] {
  const documents = [
    ...resources(template, 'AWS::IAM::Policy').map(([id, r]) => [id, r.Properties.PolicyDocument] as const),
    ...resources(template, 'AWS::IAM::ManagedPolicy').map(([id, r]) => [id, r.Properties.PolicyDocument] as const),
    ...resources(template, 'AWS::IAM::Role').flatMap(([id, r]) =>
      ((r.Properties.Policies ?? []) as { PolicyDocument: unknown }[]).map((p) => [id, p.PolicyDocument] as const),
    ),
  ];
  return documents.flatMap(([where, document]) =>
    (document as { Statement: PolicyStatement[] }).Statement.map((statement) => ({ where, statement })),
  );
}

/** What the scan finds wrong, one line each; also the wildcard resources it saw, to check the list is current. */
function scan(template: Template, apiId: string) {
  const allowed = wildcardResources(apiId);
  const findings: string[] = [];
  const seenWildcards = new Set<string>();
  const seenStarActions = new Set<string>();
  for (const { where, statement } of identityStatements(template)) {
    if (statement.Effect !== 'Allow') continue;
    const actions = actionsOf(statement);
    for (const action of actions.filter((a) => a.includes('*'))) findings.push(`${where}: wildcard action ${action}`);
    for (const resource of [statement.Resource].flat().map(render)) {
      if (resource === '*') {
        for (const action of actions) {
          if (action in STAR_RESOURCE_ACTIONS) seenStarActions.add(action);
          else findings.push(`${where}: ${action} on *`);
        }
      } else if (resource.includes('*')) {
        if (resource in allowed) seenWildcards.add(resource);
        else findings.push(`${where}: wildcard resource ${resource}`);
      }
    }
  }
  for (const [id, role] of resources(template, 'AWS::IAM::Role')) {
    const managed = JSON.stringify(role.Properties.ManagedPolicyArns ?? []);
    const allowedManaged = Object.entries(MANAGED_POLICIES).find(([prefix]) => id.startsWith(prefix))?.[1];
    const expected = allowedManaged === undefined ? '[]' : JSON.stringify([arnOfManaged(allowedManaged)]);
    if (managed !== expected) findings.push(`${id}: managed policies ${managed}`);
  }
  return { findings, seenWildcards, seenStarActions, allowed };
}

function arnOfManaged(name: string) {
  return { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::aws:policy/${name}`]] };
}

describe('IAM policy scan of the app stack', () => {
  it('finds no wildcard action, and wildcards in resources only where listed with a reason', () => {
    const { template, stack, idOf } = synthAppStack();

    const { findings, seenWildcards, seenStarActions, allowed } = scan(template, idOf(stack.realtime.webSocketApi));

    expect(findings).toEqual([]);
    // Every exception is still needed: the lists do not outlive the grants they explain.
    expect([...seenWildcards].toSorted()).toEqual(Object.keys(allowed).toSorted());
    expect([...seenStarActions]).toEqual(Object.keys(STAR_RESOURCE_ACTIONS));
    for (const reason of [...Object.values(allowed), ...Object.values(STAR_RESOURCE_ACTIONS)]) {
      expect(reason.length).toBeGreaterThan(20);
    }
  });

  it('finds nothing with mqtt: false, where no IoT exception is left', () => {
    const { template, stack, idOf } = synthAppStack({ mqtt: false });

    const { findings, seenWildcards, seenStarActions } = scan(template, idOf(stack.realtime.webSocketApi));

    expect(findings).toEqual([]);
    expect([...seenWildcards].map((arn) => /\}:([a-z-]+):\{/.exec(arn)?.[1])).toEqual(['execute-api']);
    expect([...seenStarActions]).toEqual([]);
  });

  it('would report a wildcard action, `*` on an action that has resources, an unlisted wildcard and a managed policy', () => {
    const stack = new Stack(undefined, 'ScanSelfTest');
    const role = new Role(stack, 'Bad', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    role.addToPrincipalPolicy(new IamStatement({ actions: ['s3:*'], resources: ['arn:aws:s3:::bucket'] }));
    role.addToPrincipalPolicy(new IamStatement({ actions: ['dynamodb:GetItem'], resources: ['*'] }));
    role.addToPrincipalPolicy(new IamStatement({ actions: ['iot:Publish'], resources: ['arn:aws:iot:::topic/*'] }));
    role.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('AdministratorAccess'));
    const template = Template.fromStack(stack);

    const { findings } = scan(template, 'Api');

    expect(findings).toEqual([
      expect.stringMatching(/wildcard action s3:\*$/),
      expect.stringMatching(/dynamodb:GetItem on \*$/),
      expect.stringMatching(/wildcard resource arn:aws:iot:::topic\/\*$/),
      expect.stringMatching(/^Bad[0-9A-F]{8}: managed policies/),
    ]);
  });
});
