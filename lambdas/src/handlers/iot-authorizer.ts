/**
 * AWS IoT Core custom authorizer: admits an MQTT connection that presents a Cognito token, with the user's
 * least-privilege policy (`../auth/iot-policy.ts`).
 *
 * Where the token is read, in this order:
 * - the MQTT CONNECT password (any username), which IoT hands over base64-encoded;
 * - for MQTT over WebSocket, the `token` query parameter (browsers cannot set headers on a WebSocket) or an
 *   `Authorization: Bearer` header;
 * - IoT's own `token` field (set when the authorizer is configured with a token key name).
 *
 * Refused (`isAuthenticated: false`, never a thrown error, which IoT counts as an authorizer failure) when
 * there is no token; the token is invalid, expired, of another pool, client or an unaccepted use; its `sub`
 * cannot be written into topics; the MQTT client id was sent and is not one of the user's (`isClientIdOf`);
 * or the token expires in less than IoT's shortest connection lifetime (see {@link IOT_AUTHORIZER_TIMES}).
 *
 * A failure to *check* (the JWKS cannot be fetched) is thrown, as in the WebSocket authorizer: IoT then
 * refuses the connection too, and the error reaches the Lambda's error metrics instead of looking like a
 * bad token.
 */

import { createHash } from 'node:crypto';
import { ENV, IOT_LIMITS, isClientIdOf, TOKEN_QUERY_PARAM, TOPIC_SUB_PATTERN } from '@viba-realtime/protocol';
import type { Context, IoTCustomAuthorizerEvent, IoTCustomAuthorizerResult } from 'aws-lambda';
import { CognitoTokenVerifier, InvalidTokenError, type VerifiedToken } from '../auth/cognito-token-verifier.js';
import { buildIotPolicy, IotPolicyBuildError } from '../auth/iot-policy.js';
import { ConfigError, loadConfig } from '../config.js';
import { type Clock, type Store, systemClock } from '../core/ports.js';
import { createLogger, type Logger } from '../log.js';
import { createStoreFromConfig } from '../store/dynamodb.js';
import type { HandlerEnv } from './events.js';

/**
 * The authorizer's answer. As `IoTCustomAuthorizerResult` from `@types/aws-lambda`, except that
 * `policyDocuments` are JSON strings: IoT's API model types them as a list of strings (its developer guide's
 * examples return objects, and IoT accepts both; the emulator's policy parser accepts both too).
 */
export type IotAuthorizerResult = Omit<IoTCustomAuthorizerResult, 'policyDocuments'> & { policyDocuments: string[] };

/** Bounds and defaults of the answer's times, in seconds. */
export const IOT_AUTHORIZER_TIMES = {
  /**
   * How long IoT caches the policy before invoking the authorizer again. The shortest IoT allows (300 s),
   * so rooms joined since the connect are granted their send topic within 5 minutes (until then, and for
   * rooms that don't fit the policy, `rt/users/{sub}/requests` carries a `send`).
   */
  refreshAfter: IOT_LIMITS.minAuthorizerSeconds,
  /** IoT's bounds for both times: 300 s to 24 h. */
  min: IOT_LIMITS.minAuthorizerSeconds,
  max: IOT_LIMITS.maxAuthorizerSeconds,
} as const;

/** Why a connection was refused; logged, never returned to the client (IoT only says "not authorized"). */
export type IotRefusalReason = 'no_token' | 'invalid_token' | 'expires_too_soon' | 'unusable_sub' | 'foreign_client_id';

const REFUSED_PRINCIPAL = 'anonymous';
const ACCOUNT_ID_PATTERN = /^\d{12}$/;
const ALPHANUMERIC = /^[A-Za-z0-9]{1,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * IoT's `principalId` for a user: IoT requires 1-128 characters matching `[a-zA-Z0-9]`. An alphanumeric sub
 * is used as is; a Cognito sub (a UUID) without its dashes, which keeps it recognisable in logs and unique
 * among UUIDs; anything else as its alphanumerics plus a hash of the whole sub, so that `a-b` and `ab`
 * stay apart.
 * @example
 * principalIdFor('6f1c2a9e-8d4b-4c1e-9f3a-2b7d5e6c8a10') // '6f1c2a9e8d4b4c1e9f3a2b7d5e6c8a10'
 */
export function principalIdFor(sub: string): string {
  if (ALPHANUMERIC.test(sub)) return sub;
  const alphanumerics = sub.replace(/[^A-Za-z0-9]/g, '');
  if (UUID.test(sub)) return alphanumerics;
  const hash = createHash('sha256').update(sub).digest('hex');
  return `${alphanumerics.slice(0, 64)}x${hash.slice(0, 63)}`;
}

/** Decodes IoT's base64 MQTT password; `undefined` for an empty one. */
function decodePassword(password: string | undefined): string | undefined {
  if (!password) return undefined;
  const decoded = Buffer.from(password, 'base64').toString('utf8').trim();
  return decoded || undefined;
}

/**
 * Finds the token in an IoT custom authorizer event (see the module comment for the order).
 * @example
 * extractIotToken({ protocolData: { mqtt: { clientId: 'c', password: Buffer.from(jwt).toString('base64') } } })
 */
export function extractIotToken(event: Pick<IoTCustomAuthorizerEvent, 'protocolData' | 'token'>): string | undefined {
  const fromPassword = decodePassword(event.protocolData?.mqtt?.password);
  if (fromPassword) return fromPassword;
  const http = event.protocolData?.http;
  if (http) {
    // IoT sends the query string with its leading `?`; URLSearchParams ignores it.
    const fromQuery = new URLSearchParams(http.queryString ?? '').get(TOKEN_QUERY_PARAM)?.trim();
    if (fromQuery) return fromQuery;
    for (const [name, value] of Object.entries(http.headers ?? {})) {
      if (name.toLowerCase() !== 'authorization' || !value) continue;
      const token = value.replace(/^Bearer\s+/i, '').trim();
      if (token) return token;
    }
  }
  return event.token?.trim() || undefined;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function refused(): IotAuthorizerResult {
  // IoT ignores the other fields of a refusal, but they must still be valid values.
  return {
    isAuthenticated: false,
    principalId: REFUSED_PRINCIPAL,
    disconnectAfterInSeconds: IOT_AUTHORIZER_TIMES.min,
    refreshAfterInSeconds: IOT_AUTHORIZER_TIMES.min,
    policyDocuments: [],
  };
}

/** What the handler needs besides its environment; tests and the emulator inject a clock. */
export interface IotAuthorizerDeps {
  /** @default the system clock */
  clock?: Clock;
}

/**
 * Builds the IoT custom authorizer from an environment (see `ENV` in the protocol): the same Cognito and
 * table variables as the WebSocket handlers, `AWS_REGION`, and `VIBA_AWS_ACCOUNT_ID` for the policies' ARNs.
 * @throws {ConfigError} at build time for a missing or malformed variable.
 * @example
 * // AWS: the module's `handler` export. Emulator:
 * const authorize = createIotAuthorizerHandler({ ...emulator.env, VIBA_AWS_ACCOUNT_ID: '000000000000' }, { clock });
 * const { isAuthenticated, policyDocuments } = await authorize(event);
 */
export function createIotAuthorizerHandler(env: HandlerEnv, deps: IotAuthorizerDeps = {}) {
  const clock = deps.clock ?? systemClock;
  const config = loadConfig(env, { table: true, auth: true });
  const accountId = env[ENV.iotAccountId];
  if (!accountId || !ACCOUNT_ID_PATTERN.test(accountId)) {
    throw new ConfigError(`Environment variable ${ENV.iotAccountId} must be a 12-digit AWS account id.`);
  }
  try {
    // Region and account become ARN segments: a malformed one fails the cold start, not every connect.
    buildIotPolicy({ region: config.region, accountId, sub: 'config-check', groups: [], memberRooms: [] });
  } catch (error) {
    if (error instanceof IotPolicyBuildError) throw new ConfigError(error.message, { cause: error });
    throw error;
  }
  const log = createLogger(config.logLevel).child({ handler: 'iot-authorizer' });
  const verifier = new CognitoTokenVerifier({
    userPoolId: config.userPoolId,
    clientIds: config.clientIds,
    tokenUse: config.tokenUse,
    clock,
    ...(config.jwksUri ? { jwksUri: config.jwksUri } : {}),
  });
  const store: Store = createStoreFromConfig(config, clock);

  /** The rooms to grant; on a store failure none (logged): the requests topic still serves every room, and
   * the next refresh (5 minutes) tries again. Refusing would turn a DynamoDB blip into an MQTT outage. */
  async function memberRooms(sub: string, requestLog: Logger): Promise<string[]> {
    try {
      return await store.listUserRooms(sub);
    } catch (error) {
      requestLog.error('member rooms unavailable; granting no room send topics', { error });
      return [];
    }
  }

  return async (event: IoTCustomAuthorizerEvent, _context?: Context): Promise<IotAuthorizerResult> => {
    const clientId = event.protocolData?.mqtt?.clientId || undefined;
    const requestLog = log.child({ connectionId: event.connectionMetadata?.id, clientId });
    const refuse = (reason: IotRefusalReason, fields: Record<string, unknown> = {}) => {
      requestLog.info('connect refused', { reason, ...fields });
      return refused();
    };

    const token = extractIotToken(event);
    if (token === undefined) return refuse('no_token');

    let verified: VerifiedToken;
    try {
      verified = await verifier.verify(token);
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      return refuse('invalid_token', { detail: error.message });
    }

    // aws-jwt-verify checks expiry against the wall clock; this honours the injected clock as well.
    // Whole seconds, rounded down: the connection must not outlive the token by a fraction either.
    const remaining = Math.floor(verified.exp - clock() / 1000);
    if (remaining <= 0) return refuse('invalid_token', { detail: 'Token expired.' });
    // IoT keeps a connection at least 300 s: admitting a token with less left would let the connection
    // outlive it. The client must refresh its token first (Cognito issues tokens valid 5 min to 1 day).
    if (remaining < IOT_AUTHORIZER_TIMES.min) return refuse('expires_too_soon', { remainingSeconds: remaining });
    if (!TOPIC_SUB_PATTERN.test(verified.sub)) return refuse('unusable_sub', { sub: verified.sub });
    // The policy refuses a foreign client id at Connect too; refusing here says why in the logs.
    if (clientId !== undefined && !isClientIdOf(verified.sub, clientId)) {
      return refuse('foreign_client_id', { sub: verified.sub });
    }

    const rooms = await memberRooms(verified.sub, requestLog);
    const policy = buildIotPolicy({
      region: config.region,
      accountId,
      sub: verified.sub,
      groups: verified.groups,
      memberRooms: rooms,
    });
    if (policy.omittedRooms.length > 0 || policy.skippedGroups.length > 0) {
      requestLog.warn('policy incomplete: rooms beyond the policy size use the requests topic', {
        sub: verified.sub,
        omittedRooms: policy.omittedRooms.length,
        skippedGroups: policy.skippedGroups,
      });
    }
    // Never past the token's expiry; IoT's bounds otherwise (the lower one is guaranteed by the check above).
    const disconnectAfterInSeconds = clamp(remaining, IOT_AUTHORIZER_TIMES.min, IOT_AUTHORIZER_TIMES.max);
    const refreshAfterInSeconds = clamp(
      IOT_AUTHORIZER_TIMES.refreshAfter,
      IOT_AUTHORIZER_TIMES.min,
      Math.min(IOT_AUTHORIZER_TIMES.max, disconnectAfterInSeconds),
    );
    requestLog.debug('connect accepted', {
      sub: verified.sub,
      tokenUse: verified.tokenUse,
      grantedRooms: policy.grantedRooms.length,
      documents: policy.documents.length,
    });
    return {
      isAuthenticated: true,
      principalId: principalIdFor(verified.sub),
      disconnectAfterInSeconds,
      refreshAfterInSeconds,
      policyDocuments: policy.documents,
    };
  };
}

let cached: ReturnType<typeof createIotAuthorizerHandler> | undefined;

/** The Lambda entry point. Configuration is read once per execution environment, on first use. */
export const handler = (event: IoTCustomAuthorizerEvent, context?: Context): Promise<IotAuthorizerResult> => {
  cached ??= createIotAuthorizerHandler(process.env);
  return cached(event, context);
};
