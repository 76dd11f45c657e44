/**
 * Reads the CDK app's settings from context (`-c key=value`), then the environment, then the example values
 * in cdk.json. The examples exist so that CI can `cdk synth` with nothing configured; a stack built from
 * them deploys but accepts no real token, so the app warns when it uses them.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import type { TokenUse } from './realtime.js';

/** The context key in cdk.json that holds the placeholder values. */
export const EXAMPLE_CONTEXT_KEY = 'viba:example';

/** Context keys the app reads. */
export const CONTEXT_KEYS = {
  userPoolId: 'userPoolId',
  userPoolClientIds: 'userPoolClientIds',
  tokenUse: 'tokenUse',
  stageName: 'stageName',
  removalPolicy: 'removalPolicy',
  createApiGatewayLogRole: 'createApiGatewayLogRole',
  mqtt: 'mqtt',
  dashboard: 'dashboard',
  nag: 'nag',
} as const;

/** Environment variables the app reads (the same names the handlers use for the same values). */
export const APP_ENV = {
  userPoolId: 'VIBA_USER_POOL_ID',
  userPoolClientIds: 'VIBA_CLIENT_IDS',
} as const;

export class AppConfigError extends Error {
  override readonly name = 'AppConfigError';
}

export interface AppConfig {
  userPoolId: string;
  userPoolClientIds: string[];
  tokenUse?: TokenUse[];
  stageName?: string;
  removalPolicy?: RemovalPolicy;
  createApiGatewayLogRole?: boolean;
  mqtt?: boolean;
  dashboard?: boolean;
  /** Run the cdk-nag AwsSolutions checks on synth (`-c nag=false` skips them). */
  nag: boolean;
  /** Which settings came from the cdk.json examples (empty when the app is really configured). */
  placeholders: string[];
}

export interface AppConfigSources {
  /** `node.tryGetContext`. */
  context: (key: string) => unknown;
  env: Record<string, string | undefined>;
}

function list(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const items = Array.isArray(value) ? value.map(String) : String(value).split(',');
  const trimmed = items.map((item) => item.trim()).filter((item) => item !== '');
  return trimmed.length > 0 ? trimmed : undefined;
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const trimmed = String(value).trim();
  return trimmed === '' ? undefined : trimmed;
}

function bool(key: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null || typeof value === 'boolean') return value ?? undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new AppConfigError(`Context ${key} must be true or false, got "${String(value)}".`);
}

export function resolveAppConfig({ context, env }: AppConfigSources): AppConfig {
  const examples = (context(EXAMPLE_CONTEXT_KEY) ?? {}) as Record<string, unknown>;
  const placeholders: string[] = [];
  const pick = <T>(key: keyof typeof APP_ENV, parse: (v: unknown) => T | undefined): T | undefined => {
    const chosen = parse(context(CONTEXT_KEYS[key])) ?? parse(env[APP_ENV[key]]);
    if (chosen !== undefined) return chosen;
    const example = parse(examples[key]);
    if (example !== undefined) placeholders.push(key);
    return example;
  };

  const userPoolId = pick('userPoolId', text);
  const userPoolClientIds = pick('userPoolClientIds', list);
  const missing = [
    ...(userPoolId ? [] : [`userPoolId (-c ${CONTEXT_KEYS.userPoolId}=... or ${APP_ENV.userPoolId})`]),
    ...(userPoolClientIds
      ? []
      : [`userPoolClientIds (-c ${CONTEXT_KEYS.userPoolClientIds}=id1,id2 or ${APP_ENV.userPoolClientIds})`]),
  ];
  if (!userPoolId || !userPoolClientIds) {
    throw new AppConfigError(`Missing Cognito settings: ${missing.join('; ')}.`);
  }

  const tokenUse = list(context(CONTEXT_KEYS.tokenUse));
  if (tokenUse?.some((use) => use !== 'id' && use !== 'access')) {
    throw new AppConfigError(`Context ${CONTEXT_KEYS.tokenUse} must list id and/or access.`);
  }
  const removal = text(context(CONTEXT_KEYS.removalPolicy))?.toLowerCase();
  if (removal !== undefined && removal !== 'retain' && removal !== 'destroy') {
    throw new AppConfigError(`Context ${CONTEXT_KEYS.removalPolicy} must be retain or destroy.`);
  }
  const stageName = text(context(CONTEXT_KEYS.stageName));
  const createApiGatewayLogRole = bool(
    CONTEXT_KEYS.createApiGatewayLogRole,
    context(CONTEXT_KEYS.createApiGatewayLogRole),
  );
  const mqtt = bool(CONTEXT_KEYS.mqtt, context(CONTEXT_KEYS.mqtt));
  const dashboard = bool(CONTEXT_KEYS.dashboard, context(CONTEXT_KEYS.dashboard));
  const nag = bool(CONTEXT_KEYS.nag, context(CONTEXT_KEYS.nag)) ?? true;

  return {
    userPoolId,
    userPoolClientIds,
    ...(tokenUse ? { tokenUse: tokenUse as TokenUse[] } : {}),
    ...(stageName ? { stageName } : {}),
    ...(removal ? { removalPolicy: removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN } : {}),
    ...(createApiGatewayLogRole === undefined ? {} : { createApiGatewayLogRole }),
    ...(mqtt === undefined ? {} : { mqtt }),
    ...(dashboard === undefined ? {} : { dashboard }),
    nag,
    placeholders,
  };
}
