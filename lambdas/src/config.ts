/**
 * Turns a handler's environment into typed configuration, once, at cold start. A missing or malformed
 * variable fails the cold start with a message naming it, instead of failing later on a request.
 */
import { ENV } from '@viba-realtime/protocol';
import type { TokenUse } from './auth/cognito-token-verifier.js';
import type { HandlerEnv } from './handlers/events.js';
import { isLogLevel, type LogLevel } from './log.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface HandlerConfig {
  region: string;
  tableName: string;
  userPoolId: string;
  clientIds: string[];
  tokenUse: TokenUse[];
  logLevel: LogLevel;
  connectionsEndpoint: string | undefined;
  /** IoT Core's data-plane endpoint; undefined when MQTT delivery is not configured. */
  iotEndpoint: string | undefined;
  /** The fan-out queue's URL; undefined: fan-outs are delivered inline. */
  fanoutQueueUrl: string | undefined;
  sqsEndpoint: string | undefined;
  dynamodbEndpoint: string | undefined;
  jwksUri: string | undefined;
  /** Credentials from the given environment. The emulator passes dummy ones in the env record it hands
   * the handler (not in process.env, which several emulators in one process would share). */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
}

function required(env: HandlerEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new ConfigError(`Environment variable ${name} is not set.`);
  return value;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

export function loadConfig(env: HandlerEnv, needs: { table: boolean; auth: boolean }): HandlerConfig {
  const clientIds = needs.auth ? list(required(env, ENV.clientIds)) : list(env[ENV.clientIds]);
  if (needs.auth && clientIds.length === 0) throw new ConfigError(`${ENV.clientIds} lists no client id.`);
  const tokenUse = list(env[ENV.tokenUse] ?? 'id,access');
  for (const use of tokenUse) {
    if (use !== 'id' && use !== 'access') throw new ConfigError(`${ENV.tokenUse} has "${use}"; use id and/or access.`);
  }
  const logLevel = env[ENV.logLevel] ?? 'info';
  if (!isLogLevel(logLevel))
    throw new ConfigError(`${ENV.logLevel} is "${logLevel}"; use debug, info, warn, error or silent.`);
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    tableName: needs.table ? required(env, ENV.tableName) : (env[ENV.tableName] ?? ''),
    userPoolId: needs.auth ? required(env, ENV.userPoolId) : (env[ENV.userPoolId] ?? ''),
    clientIds,
    tokenUse: tokenUse as TokenUse[],
    logLevel,
    connectionsEndpoint: env[ENV.connectionsEndpoint] || undefined,
    iotEndpoint: env[ENV.iotEndpoint] || undefined,
    fanoutQueueUrl: env[ENV.fanoutQueueUrl] || undefined,
    sqsEndpoint: env[ENV.sqsEndpoint] || undefined,
    dynamodbEndpoint: env[ENV.dynamodbEndpoint] || undefined,
    jwksUri: env[ENV.jwksUri] || undefined,
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
        : undefined,
  };
}
