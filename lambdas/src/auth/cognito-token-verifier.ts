/**
 * Verifies Cognito ID and access tokens with `aws-jwt-verify`. In AWS the JWKS comes from Cognito; the
 * emulator sets `VIBA_JWKS_URI` to its dev issuer's JWKS, served over plain http, which aws-jwt-verify's
 * default https-only fetcher cannot read, so a fetcher that reads that one URL is plugged in. The token
 * itself is verified exactly as in AWS (issuer, audience/client_id, token_use, expiry, signature).
 */
import { CognitoJwtVerifier } from 'aws-jwt-verify';
import { FetchError, JwksNotAvailableInCacheError, JwtBaseError } from 'aws-jwt-verify/error';
import type { Fetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';

export type TokenUse = 'id' | 'access';

export interface VerifiedToken {
  sub: string;
  username: string;
  groups: string[];
  /** Epoch seconds. */
  exp: number;
  tokenUse: TokenUse;
}

/** The token was presented but is not acceptable (bad signature, expired, other pool or client, wrong use). */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
}

export interface CognitoTokenVerifierOptions {
  userPoolId: string;
  clientIds: string[];
  /** @default ['id', 'access'] */
  tokenUse?: TokenUse[];
  /** Read the JWKS from this URL instead of Cognito's (emulator only). */
  jwksUri?: string;
  /** Epoch ms, for the `iat` check (aws-jwt-verify checks `exp` and `nbf` against the wall clock). @default Date.now */
  clock?: () => number;
}

/**
 * How far ahead of our clock a token's `iat` may be (Cognito's and Lambda's clocks are NTP-synced; this is the
 * usual JWT clock-skew allowance). A token issued further in the future is not one Cognito issued now.
 */
export const MAX_IAT_SKEW_SECONDS = 300;

/** A fetcher that serves every JWKS request from one http(s) URL. */
class FixedUrlFetcher implements Fetcher {
  constructor(private readonly url: string) {}
  async fetch(): Promise<ArrayBuffer> {
    const response = await fetch(this.url);
    if (!response.ok) throw new Error(`JWKS fetch from ${this.url} answered ${response.status}`);
    return response.arrayBuffer();
  }
}

export class CognitoTokenVerifier {
  readonly #verifier;
  readonly #tokenUse: TokenUse[];
  readonly #clock: () => number;

  constructor(options: CognitoTokenVerifierOptions) {
    if (options.clientIds.length === 0) throw new Error('CognitoTokenVerifier needs at least one client id.');
    this.#tokenUse = options.tokenUse ?? ['id', 'access'];
    this.#clock = options.clock ?? Date.now;
    this.#verifier = CognitoJwtVerifier.create(
      { userPoolId: options.userPoolId, tokenUse: null, clientId: options.clientIds },
      options.jwksUri
        ? { jwksCache: new SimpleJwksCache({ fetcher: new FixedUrlFetcher(options.jwksUri) }) }
        : undefined,
    );
  }

  /**
   * @throws {InvalidTokenError} when the token is not acceptable; any other error means the check itself
   * failed (for example the JWKS could not be fetched) and must not be reported as a bad token.
   */
  async verify(token: string): Promise<VerifiedToken> {
    let payload: Record<string, unknown>;
    try {
      payload = (await this.#verifier.verify(token)) as unknown as Record<string, unknown>;
    } catch (error) {
      if (error instanceof FetchError || error instanceof JwksNotAvailableInCacheError) throw error;
      if (error instanceof JwtBaseError) throw new InvalidTokenError(error.message, { cause: error });
      throw error;
    }
    // aws-jwt-verify checks these only when present; every Cognito token has them, and without them the
    // connection would never expire (`exp`) or belong to nobody (`sub`).
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) {
      throw new InvalidTokenError('Token has no expiry (exp).');
    }
    if (typeof payload.sub !== 'string' || payload.sub === '')
      throw new InvalidTokenError('Token has no subject (sub).');
    // Not checked by aws-jwt-verify at all: a token "issued" in the future is not yet valid.
    if (typeof payload.iat === 'number' && payload.iat > this.#clock() / 1000 + MAX_IAT_SKEW_SECONDS) {
      throw new InvalidTokenError('Token issued in the future (iat).');
    }
    const tokenUse = payload.token_use as TokenUse;
    if (!this.#tokenUse.includes(tokenUse)) {
      throw new InvalidTokenError(`Tokens of use "${tokenUse}" are not accepted here.`);
    }
    const groups = Array.isArray(payload['cognito:groups']) ? (payload['cognito:groups'] as string[]) : [];
    const username =
      (typeof payload['cognito:username'] === 'string' && payload['cognito:username']) ||
      (typeof payload.username === 'string' && payload.username) ||
      String(payload.sub);
    return { sub: payload.sub, username, groups, exp: payload.exp, tokenUse };
  }
}
