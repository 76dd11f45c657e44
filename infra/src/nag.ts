/**
 * The cdk-nag AwsSolutions findings that {@link Realtime} raises by design, each with the reason it is right
 * for this service. Only metadata (`Validations.of(scope).acknowledge`): it changes no resource and needs no
 * cdk-nag at run time, so applying it is harmless whether or not an app runs the checks.
 *
 * Every acknowledgement names one finding exactly (cdk-nag 3 matches `RuleId[finding]` ids verbatim, with no
 * prefix matching) on the narrowest construct that holds it; a finding the design does not explain (a new
 * wildcard, a route without authorization that should have one) still fails the check.
 */
import { ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { IOT_PUBLISH_TOPICS, type Realtime } from './realtime.js';

/** One acknowledged finding: the rule (and finding) id, why it is right here, and where it applies. */
export interface NagAcknowledgement {
  /** `AwsSolutions-RULE` or `AwsSolutions-RULE[finding]`. */
  readonly id: string;
  readonly reason: string;
  /** The construct it is acknowledged on; it covers that construct's resources. */
  readonly scope: IConstruct;
}

const REASONS = {
  runtime:
    'The runtime is pinned to nodejs22.x on purpose: the handlers are bundled for node22 (esbuild target) and ' +
    'tested on that line; the runtime and the bundling target move together, deliberately, to the next LTS.',
  routeAuthorization:
    'API Gateway WebSocket APIs authorize only $connect (an authorizer cannot be attached to another route): ' +
    'this route only runs on a connection the Cognito REQUEST authorizer admitted, and the routes function ' +
    'reads the user from that connection, never from the message.',
  apiGatewayLogRole:
    "API Gateway's account-level CloudWatch role writes the logs of every API of the account and region, in log " +
    'groups API Gateway creates itself (execution logs of any API); AWS documents this managed policy for it ' +
    'and no statement of this stack could name those groups. Created only on request (createApiGatewayLogRole).',
  describeEndpoint:
    'iot:DescribeEndpoint has no resource-level permissions (the Service Authorization Reference lists no ' +
    'resource type for it): `*` is the only resource it accepts. It is the only action of this policy.',
  connections:
    "execute-api:ManageConnections on this API's stage only: the wildcards are the HTTP method (POST sends, " +
    'DELETE closes, GET reads a connection) and the connection id, which exists only at run time.',
  userRooms:
    "The server publishes a room's frames to each member's own topic rt/users/{sub}/rooms/{room}: the " +
    'wildcards are the Cognito sub and the room, known only at run time. Clients-to-server topics are excluded.',
  responses:
    "The ingress rule answers each MQTT request on the requester's own topic rt/users/{sub}/responses: the " +
    'wildcard is the Cognito sub, known only at run time.',
  inbox:
    "Notifications go to the recipient's own topic rt/users/{sub}/inbox: the wildcard is the Cognito sub, " +
    'known only at run time.',
  groupAnnouncements:
    'Announcements to a Cognito group go to rt/announcements/groups/{group}: the wildcard is the group name, ' +
    'known only at run time.',
} as const;

/**
 * The findings {@link Realtime} raises by design, with their reasons, for the construct as configured (MQTT
 * channel, account log role). Call after the construct is complete; ids embed logical ids, so acknowledge
 * before overriding any.
 */
export function realtimeNagAcknowledgements(realtime: Realtime): NagAcknowledgement[] {
  const stack = Stack.of(realtime);
  /** What cdk-nag's IAM5 calls a resource: the ARN with `Ref`/`Fn::GetAtt` as `<Id>`/`<Id.Attr>`. */
  const wildcardResource = (arn: string) => `AwsSolutions-IAM5[Resource::${flattenReference(stack.resolve(arn))}]`;
  const topicArn = (topic: string) =>
    stack.formatArn({
      service: 'iot',
      resource: 'topic',
      resourceName: topic,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });

  const acknowledgements: NagAcknowledgement[] = [];
  for (const fn of Object.values(realtime.functions)) {
    acknowledgements.push({ id: 'AwsSolutions-L1', reason: REASONS.runtime, scope: fn });
  }
  for (const route of realtime.routes.filter((r) => !r.definition.authorized)) {
    acknowledgements.push({ id: 'AwsSolutions-APIG4', reason: REASONS.routeAuthorization, scope: route.route });
  }
  if (realtime.apiGatewayLogRole) {
    acknowledgements.push({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason: REASONS.apiGatewayLogRole,
      scope: realtime.apiGatewayLogRole,
    });
  }
  // The functions' policies: on the construct, as several roles share each ARN; each id names one ARN.
  acknowledgements.push({
    id: wildcardResource(
      stack.formatArn({
        service: 'execute-api',
        resource: realtime.webSocketApi.apiId,
        resourceName: `${realtime.stage.stageName}/*/@connections/*`,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    ),
    reason: REASONS.connections,
    scope: realtime,
  });
  if (realtime.mqtt) {
    acknowledgements.push({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: REASONS.describeEndpoint,
      scope: realtime.mqtt.endpointLookup,
    });
    const topics: [string, string][] = [
      [IOT_PUBLISH_TOPICS.userRooms, REASONS.userRooms],
      [IOT_PUBLISH_TOPICS.responses, REASONS.responses],
      [IOT_PUBLISH_TOPICS.inbox, REASONS.inbox],
      [IOT_PUBLISH_TOPICS.groupAnnouncements, REASONS.groupAnnouncements],
    ];
    for (const [topic, reason] of topics) {
      acknowledgements.push({ id: wildcardResource(topicArn(topic)), reason, scope: realtime });
    }
  }
  return acknowledgements;
}

/**
 * Acknowledges {@link realtimeNagAcknowledgements} on their constructs. Metadata only.
 *
 * @example
 * Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
 * acknowledgeRealtimeNagFindings(realtime);
 */
export function acknowledgeRealtimeNagFindings(realtime: Realtime): NagAcknowledgement[] {
  const acknowledgements = realtimeNagAcknowledgements(realtime);
  for (const { id, reason, scope } of acknowledgements) Validations.of(scope).acknowledge({ id, reason });
  return acknowledgements;
}

/** cdk-nag's rendering of a resolved CloudFormation value (its `flattenCfnReference`). */
function flattenReference(value: unknown): string {
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    if (Array.isArray(node['Fn::Join'])) {
      const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if ('Fn::Sub' in node) return flattenReference(node['Fn::Sub']);
    if (Array.isArray(node['Fn::GetAtt'])) {
      const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if ('Fn::ImportValue' in node) return flattenReference(node['Fn::ImportValue']);
    if ('Ref' in node) return `<${flattenReference(node.Ref)}>`;
  }
  return JSON.stringify(value);
}
