/**
 * cdk-nag's AwsSolutions pack on the app stack: no finding is left unacknowledged, every acknowledgement
 * names a finding the design really raises (none is stale), and each says why.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { acknowledgeRealtimeNagFindings, realtimeNagAcknowledgements } from '../src/nag.js';
import { Realtime, type RealtimeProps } from '../src/realtime.js';
import { VibaRealtimeStack } from '../src/stack.js';
import { newApp, POOL_ID } from './support.js';

/** `rule at construct path`, one per violating resource. */
function findings(scope: IConstruct): string[] {
  const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(scope);
  return report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`));
}

/** The app stack as bin/app.ts makes it (acknowledgements applied), plus `extend`'s additions, synthesized. */
function appStack(
  props: { mqtt?: boolean; createApiGatewayLogRole?: boolean } = {},
  extend: (stack: VibaRealtimeStack) => void = () => {},
) {
  const stack = new VibaRealtimeStack(newApp(), 'VibaRealtimeStack', {
    userPoolId: POOL_ID,
    userPoolClientIds: ['clientA'],
    ...props,
  });
  extend(stack);
  Template.fromStack(stack);
  return stack;
}

/** The same `Realtime` in a stack of the same name, with nothing acknowledged. */
function bareStack(props: Partial<RealtimeProps> = {}) {
  const stack = new Stack(newApp(), 'VibaRealtimeStack');
  const realtime = new Realtime(stack, 'Realtime', {
    userPool: POOL_ID,
    userPoolClientIds: ['clientA'],
    createApiGatewayLogRole: true,
    ...props,
  });
  const template = Template.fromStack(stack);
  return { stack, realtime, template };
}

describe('cdk-nag AwsSolutions on the app stack', () => {
  it('leaves no finding unacknowledged', () => {
    expect(findings(appStack())).toEqual([]);
  });

  it('leaves none with mqtt: false and without the account log role either', () => {
    expect(findings(appStack({ mqtt: false, createApiGatewayLogRole: false }))).toEqual([]);
  });

  it('acknowledges exactly the findings the design raises, each with a reason of its own', () => {
    const { stack, realtime } = bareStack();
    const raised = findings(stack);
    const acknowledgements = realtimeNagAcknowledgements(realtime);

    // Each finding is covered by an acknowledgement of that id on the resource or an ancestor...
    const covers = (finding: string) => (ack: (typeof acknowledgements)[number]) => {
      const [rule, path] = finding.split(' at ') as [string, string];
      return rule === ack.id && (path === ack.scope.node.path || path.startsWith(`${ack.scope.node.path}/`));
    };
    expect(raised.filter((finding) => !acknowledgements.some(covers(finding)))).toEqual([]);
    // ...and each acknowledgement covers at least one finding: none is stale.
    expect(acknowledgements.filter((ack) => !raised.some((finding) => covers(finding)(ack)))).toEqual([]);
    expect(new Set(acknowledgements.map((a) => a.id))).toEqual(
      new Set([
        'AwsSolutions-L1',
        'AwsSolutions-APIG4',
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        'AwsSolutions-IAM5[Resource::*]',
        expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:.*:execute-api:.*\/prod\/\*\/@connections\/\*\]$/),
        expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:.*:iot:.*:topic\/rt\/users\/\*\/rooms\/\*\]$/),
        expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:.*:iot:.*:topic\/rt\/users\/\*\/responses\]$/),
        expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:.*:iot:.*:topic\/rt\/users\/\*\/inbox\]$/),
        expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:.*:iot:.*:topic\/rt\/announcements\/groups\/\*\]$/),
      ]),
    );
    for (const { id, reason } of acknowledgements) {
      expect(reason.length, id).toBeGreaterThan(80);
    }
  });

  it('acknowledges nothing broader than a function, a route, a role, the lookup, or an exact ARN', () => {
    const { realtime } = bareStack();

    for (const { id, scope } of realtimeNagAcknowledgements(realtime)) {
      // On the whole construct only findings that name one exact resource ARN (no rule-wide acknowledgement).
      if (scope === realtime) expect(id, id).toMatch(/^AwsSolutions-IAM5\[Resource::arn:/);
    }
  });

  it('still reports what the design does not explain', () => {
    const stack = appStack({}, (s) => {
      const extra = new Role(s, 'Extra', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
      extra.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('AdministratorAccess'));
      // A backend's publish grant: its `client/*` (iot:DeleteConnection) is the backend's to acknowledge.
      s.realtime.grantPublish(extra);
    });

    const raised = findings(stack);

    expect(raised).toContain(
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AdministratorAccess] at VibaRealtimeStack/Extra/Resource',
    );
    expect(raised).toContain(
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:client/*] at VibaRealtimeStack/Extra/DefaultPolicy/Resource',
    );
  });

  it('changes no resource: acknowledgements are metadata only', () => {
    const bare = bareStack().template.toJSON();
    const stack = new Stack(newApp(), 'VibaRealtimeStack');
    const realtime = new Realtime(stack, 'Realtime', {
      userPool: POOL_ID,
      userPoolClientIds: ['clientA'],
      createApiGatewayLogRole: true,
    });
    acknowledgeRealtimeNagFindings(realtime);

    expect(Template.fromStack(stack).toJSON()).toEqual(bare);
  });
});
