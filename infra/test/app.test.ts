/**
 * The deployable app (bin/app.ts, through createApp) synthesized in-process the way `cdk synth` does it:
 * offline, with no account, and with the cdk-nag checks as a validation plugin.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp, STACK_NAME } from '../bin/create-app.js';
import { AppConfigError } from '../src/app-config.js';

const CDK_JSON = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as {
  context: Record<string, unknown>;
};

const outdirs: string[] = [];
afterEach(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

/** What synthesis printed (the validation report goes to stderr), kept out of the test output. */
function capturePrinted(): () => string {
  const error = vi.spyOn(console, 'error').mockImplementation(() => {});
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  return () => [...error.mock.calls, ...warn.mock.calls].flat().map(String).join('\n');
}

/** The app with cdk.json's context (as the CLI passes it) plus `context`, bundling skipped, into a temp dir. */
function app(context: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'viba-infra-'));
  outdirs.push(outdir);
  return createApp({
    appProps: { outdir, context: { ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [], ...context } },
    env,
  });
}

describe('the deployable app', () => {
  it('synthesizes with nothing configured and no credentials, the cdk-nag checks passing', () => {
    const { app: cdkApp, config } = app();
    const printed = capturePrinted();

    const assembly = cdkApp.synth();

    expect(config.nag).toBe(true);
    expect(config.placeholders).toEqual(['userPoolId', 'userPoolClientIds']);
    expect(printed()).toContain('Using the example userPoolId and userPoolClientIds from cdk.json');
    expect(printed()).not.toContain('AwsSolutions');
    const stack = assembly.getStackByName(STACK_NAME);
    expect(stack.environment.account).toBe('unknown-account');
    expect(Object.keys(stack.template.Outputs ?? {}).toSorted()).toEqual(
      ['ClientConfig', 'FanoutQueueUrl', 'IotAuthorizerName', 'MqttEndpoint', 'TableName', 'WebSocketUrl'].toSorted(),
    );
  });

  it('takes the user pool and client ids from context, or else the environment', () => {
    const fromContext = app({ userPoolId: 'eu-west-1_Ctx', userPoolClientIds: 'a,b' }, { VIBA_USER_POOL_ID: 'x_Y' });
    const fromEnv = app({}, { VIBA_USER_POOL_ID: 'eu-west-1_Env', VIBA_CLIENT_IDS: 'c' });

    expect(fromContext.stack.realtime.userPoolId).toBe('eu-west-1_Ctx');
    expect(fromContext.stack.realtime.userPoolClientIds).toEqual(['a', 'b']);
    expect(fromEnv.stack.realtime.userPoolId).toBe('eu-west-1_Env');
    expect(fromEnv.config.placeholders).toEqual([]);
  });

  it('fails the synth on a finding nobody acknowledged', () => {
    const { app: cdkApp, stack } = app();
    const admin = new Role(stack, 'Admin', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    admin.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('AdministratorAccess'));
    capturePrinted();

    expect(() => cdkApp.synth()).toThrow(
      /AwsSolutions-IAM4\[Policy::arn:<AWS::Partition>:iam::aws:policy\/AdministratorAccess\]/,
    );
  });

  it('skips the checks with -c nag=false', () => {
    const { app: cdkApp, stack, config } = app({ nag: 'false' });
    const admin = new Role(stack, 'Admin', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    admin.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('AdministratorAccess'));

    const printed = capturePrinted();

    expect(config.nag).toBe(false);
    expect(() => cdkApp.synth()).not.toThrow();
    expect(printed()).not.toContain('AwsSolutions');
  });

  it('refuses to start without Cognito settings, naming them', () => {
    const { viba: _examples, ...withoutExamples } = { viba: undefined, ...CDK_JSON.context };
    const outdir = mkdtempSync(join(tmpdir(), 'viba-infra-'));
    outdirs.push(outdir);
    const context = { ...withoutExamples, 'viba:example': {} };

    expect(() => createApp({ appProps: { outdir, context }, env: {} })).toThrow(AppConfigError);
    expect(() => createApp({ appProps: { outdir, context }, env: {} })).toThrow(/userPoolId .*VIBA_USER_POOL_ID/);
  });
});
