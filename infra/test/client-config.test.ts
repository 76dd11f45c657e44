import { CLIENT_CONFIG_VERSION, parseClientConfig } from '@viba-realtime/protocol';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import { describe, expect, it } from 'vitest';
import { Realtime } from '../src/realtime.js';
import { evaluate, newApp, POOL_ID, PSEUDO, type Resource, resources, synth, synthAppStack } from './support.js';

describe('VibaRealtimeStack ClientConfig output', () => {
  it('is JSON the SDK accepts as is: the protocol shape, with the deploy-time values rendered', () => {
    const { template, stack, idOf } = synthAppStack();
    const [[lookupId]] = resources(template, 'Custom::AWS') as [[string, Resource]];
    const output = template.toJSON().Outputs.ClientConfig as { Value: unknown };

    const parsed: unknown = JSON.parse(evaluate(output.Value));

    expect(parsed).toEqual({
      version: CLIENT_CONFIG_VERSION,
      region: PSEUDO['AWS::Region'],
      userPoolId: POOL_ID,
      userPoolClientIds: ['clientA'],
      websocket: { url: `wss://<${idOf(stack.realtime.webSocketApi)}>.execute-api.eu-west-1.amazonaws.com/prod` },
      mqtt: {
        url: `wss://<${lookupId}.endpointAddress>/mqtt`,
        authorizerName: stack.realtime.mqtt?.authorizerName,
      },
    });
    // The reader the SDK runs (createRealtimeClient({ config })) takes it without complaint.
    expect(parseClientConfig(parsed)).toEqual(parsed);
  });

  it('leaves mqtt out with mqtt: false', () => {
    const { template } = synthAppStack({ mqtt: false });

    const parsed = parseClientConfig(JSON.parse(evaluate(template.toJSON().Outputs.ClientConfig.Value)));

    expect(parsed.mqtt).toBeUndefined();
    expect(Object.keys(parsed).toSorted()).toEqual(
      ['region', 'userPoolClientIds', 'userPoolId', 'version', 'websocket'].toSorted(),
    );
  });
});

describe('Realtime.clientConfig', () => {
  it('holds tokens for what is known at deploy time: region, WebSocket URL, IoT endpoint', () => {
    const { realtime, stack, apiId, template } = synth({ userPoolClientIds: ['clientA', 'clientB'] });
    const [[lookupId]] = resources(template, 'Custom::AWS') as [[string, Resource]];

    const resolved = stack.resolve(realtime.clientConfig());

    expect(resolved).toEqual({
      version: CLIENT_CONFIG_VERSION,
      region: { Ref: 'AWS::Region' },
      userPoolId: POOL_ID,
      userPoolClientIds: ['clientA', 'clientB'],
      websocket: {
        url: {
          'Fn::Join': [
            '',
            [
              'wss://',
              { Ref: apiId },
              '.execute-api.',
              { Ref: 'AWS::Region' },
              '.',
              { Ref: 'AWS::URLSuffix' },
              '/prod',
            ],
          ],
        },
      },
      mqtt: {
        url: { 'Fn::Join': ['', ['wss://', { 'Fn::GetAtt': [lookupId, 'endpointAddress'] }, '/mqtt']] },
        authorizerName: realtime.mqtt?.authorizerName,
      },
    });
  });

  it('names a user pool passed as an object by reference', () => {
    const stack = new Stack(newApp(), 'PoolStack');
    const userPool = new UserPool(stack, 'Pool');
    const realtime = new Realtime(stack, 'Realtime', { userPool, userPoolClientIds: ['clientA'], mqtt: false });
    Template.fromStack(stack);

    const resolved = stack.resolve(realtime.clientConfig()) as { userPoolId: unknown; mqtt?: unknown };

    expect(resolved.userPoolId).toEqual({ Ref: stack.getLogicalId(userPool.node.defaultChild as CfnElement) });
    expect(resolved.mqtt).toBeUndefined();
  });
});
