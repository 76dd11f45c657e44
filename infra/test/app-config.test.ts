import { RemovalPolicy } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { AppConfigError, EXAMPLE_CONTEXT_KEY, resolveAppConfig } from '../src/app-config.js';

const EXAMPLES = { [EXAMPLE_CONTEXT_KEY]: { userPoolId: 'us-east-1_EXAMPLE', userPoolClientIds: 'exampleclientid' } };

function resolve(context: Record<string, unknown>, env: Record<string, string | undefined> = {}) {
  return resolveAppConfig({ context: (key) => context[key], env });
}

describe('resolveAppConfig', () => {
  it('prefers -c context over the environment over the cdk.json examples', () => {
    const fromContext = resolve(
      { ...EXAMPLES, userPoolId: 'eu-west-1_Ctx', userPoolClientIds: 'a, b' },
      { VIBA_USER_POOL_ID: 'eu-west-1_Env', VIBA_CLIENT_IDS: 'e' },
    );
    const fromEnv = resolve(EXAMPLES, { VIBA_USER_POOL_ID: 'eu-west-1_Env', VIBA_CLIENT_IDS: 'e1,e2' });

    expect(fromContext).toMatchObject({ userPoolId: 'eu-west-1_Ctx', userPoolClientIds: ['a', 'b'], placeholders: [] });
    expect(fromEnv).toMatchObject({ userPoolId: 'eu-west-1_Env', userPoolClientIds: ['e1', 'e2'], placeholders: [] });
  });

  it('falls back to the examples and says so', () => {
    const config = resolve(EXAMPLES);

    expect(config).toMatchObject({
      userPoolId: 'us-east-1_EXAMPLE',
      userPoolClientIds: ['exampleclientid'],
      placeholders: ['userPoolId', 'userPoolClientIds'],
    });
  });

  it('fails with a message naming what is missing and how to pass it', () => {
    expect.assertions(3);
    try {
      resolve({ userPoolId: 'eu-west-1_Ctx' });
    } catch (error) {
      expect(error).toBeInstanceOf(AppConfigError);
      expect((error as Error).message).toContain('userPoolClientIds');
      expect((error as Error).message).toContain('VIBA_CLIENT_IDS');
    }
  });

  it('reads the optional settings from context', () => {
    const config = resolve({
      ...EXAMPLES,
      tokenUse: 'access',
      stageName: 'dev',
      removalPolicy: 'destroy',
      createApiGatewayLogRole: 'false',
      mqtt: 'false',
      dashboard: 'false',
      nag: 'false',
    });

    expect(config).toMatchObject({
      tokenUse: ['access'],
      stageName: 'dev',
      removalPolicy: RemovalPolicy.DESTROY,
      createApiGatewayLogRole: false,
      mqtt: false,
      dashboard: false,
      nag: false,
    });
  });

  it('runs the cdk-nag checks unless told not to, and keeps the dashboard at its default', () => {
    const config = resolve(EXAMPLES);

    expect(config.nag).toBe(true);
    expect(config).not.toHaveProperty('dashboard');
  });

  it('rejects malformed optional settings', () => {
    expect(() => resolve({ ...EXAMPLES, tokenUse: 'refresh' })).toThrow(AppConfigError);
    expect(() => resolve({ ...EXAMPLES, removalPolicy: 'snapshot' })).toThrow(AppConfigError);
    expect(() => resolve({ ...EXAMPLES, createApiGatewayLogRole: 'yes' })).toThrow(AppConfigError);
    expect(() => resolve({ ...EXAMPLES, mqtt: 'off' })).toThrow(AppConfigError);
    expect(() => resolve({ ...EXAMPLES, dashboard: 'no' })).toThrow(AppConfigError);
    expect(() => resolve({ ...EXAMPLES, nag: 'skip' })).toThrow(AppConfigError);
  });
});
