/**
 * API Gateway WebSocket REQUEST authorizer for `$connect`.
 *
 * - no token at all -> throws `Unauthorized`, which API Gateway turns into HTTP 401;
 * - a token that is invalid, expired, for another pool or client, or of a use not accepted -> a Deny
 *   policy, which API Gateway turns into HTTP 403;
 * - a valid token -> Allow, with the caller in `context` (see `AuthorizerContext`), which API Gateway passes
 *   to every later route of the connection as `requestContext.authorizer`.
 *
 * The token is read from the `token` query parameter (browsers cannot set headers on a WebSocket) or an
 * `Authorization: Bearer` header (Node clients).
 */

import { type AuthorizerContext, TOKEN_QUERY_PARAM } from '@viba-realtime/protocol';
import type { Context } from 'aws-lambda';
import { CognitoTokenVerifier, InvalidTokenError } from '../auth/cognito-token-verifier.js';
import { loadConfig } from '../config.js';
import { type Clock, systemClock } from '../core/ports.js';
import { createLogger } from '../log.js';
import type { HandlerEnv, WsAuthorizerEvent, WsAuthorizerResult } from './events.js';

/** Finds the token in the query string or the Authorization header (any case, `Bearer ` optional). */
export function extractToken(event: Pick<WsAuthorizerEvent, 'headers' | 'queryStringParameters'>): string | undefined {
  const fromQuery = event.queryStringParameters?.[TOKEN_QUERY_PARAM];
  if (fromQuery) return fromQuery;
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (name.toLowerCase() !== 'authorization' || !value) continue;
    const token = value.replace(/^Bearer\s+/i, '').trim();
    if (token) return token;
  }
  return undefined;
}

function policy(effect: 'Allow' | 'Deny', principalId: string, resource: string): WsAuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
    },
  };
}

/**
 * Builds the authorizer from an environment (see `ENV` in the protocol).
 * @example
 * // AWS: the module's `handler` export. Emulator: createWsAuthorizerHandler(envRecord)
 */
export function createWsAuthorizerHandler(env: HandlerEnv, deps: { clock?: Clock } = {}) {
  const clock = deps.clock ?? systemClock;
  const config = loadConfig(env, { table: false, auth: true });
  const log = createLogger(config.logLevel).child({ handler: 'ws-authorizer' });
  const verifier = new CognitoTokenVerifier({
    userPoolId: config.userPoolId,
    clientIds: config.clientIds,
    tokenUse: config.tokenUse,
    clock,
    ...(config.jwksUri ? { jwksUri: config.jwksUri } : {}),
  });

  return async (event: WsAuthorizerEvent, _context?: Context): Promise<WsAuthorizerResult> => {
    const token = extractToken(event);
    if (token === undefined) {
      log.info('connect refused: no token', { connectionId: event.requestContext.connectionId });
      // The exact message 'Unauthorized' is what makes API Gateway answer 401 instead of 500.
      throw new Error('Unauthorized');
    }
    try {
      const verified = await verifier.verify(token);
      // aws-jwt-verify checks expiry against the wall clock; this also honours an injected clock, so the
      // emulator's tests can move time forward past a token's expiry.
      if (verified.exp <= Math.floor(clock() / 1000)) throw new InvalidTokenError('Token expired.');
      const context: AuthorizerContext = {
        sub: verified.sub,
        username: verified.username,
        groups: verified.groups.join(','),
        exp: verified.exp,
        tokenUse: verified.tokenUse,
      };
      return { ...policy('Allow', verified.sub, event.methodArn), context: { ...context } };
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      log.info('connect refused: invalid token', {
        connectionId: event.requestContext.connectionId,
        reason: error.message,
      });
      return policy('Deny', 'anonymous', event.methodArn);
    }
  };
}

let cached: ReturnType<typeof createWsAuthorizerHandler> | undefined;

/** The Lambda entry point. Configuration is read once per execution environment, on first use. */
export const handler = (event: WsAuthorizerEvent, context?: Context): Promise<WsAuthorizerResult> => {
  cached ??= createWsAuthorizerHandler(process.env);
  return cached(event, context);
};
