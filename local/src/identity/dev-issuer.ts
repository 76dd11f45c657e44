/**
 * A development stand-in for a Cognito user pool: it signs RS256 JWTs shaped exactly like Cognito's ID and
 * access tokens and publishes the matching JWKS, so the real authorizer (aws-jwt-verify) accepts them
 * without any network. Emulator only: it will sign anything it is asked to.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Clock, systemClock } from '../time.js';

/** Options of {@link createDevIssuer}. */
export interface DevIssuerOptions {
  /** AWS region, part of the issuer URL. */
  region: string;
  /** User pool id, e.g. `us-east-1_LocalDev01`; part of the issuer URL. */
  userPoolId: string;
  /** App client id: the ID token's `aud` and the access token's `client_id`. */
  clientId: string;
  /** Time source for `iat`/`exp`. @default the system clock */
  clock?: Clock;
  /** Where to keep the signing key (JWK JSON). When given, a restart reuses the key so tokens minted
   * earlier stay valid; when absent, a fresh key is made per issuer. */
  keyFile?: string;
}

/** What to put in a token. */
export interface MintOptions {
  /** The user id (`sub`). */
  sub: string;
  /** Cognito username. @default sub */
  username?: string;
  /** `cognito:groups`; the claim is left out when empty, as Cognito does. */
  groups?: readonly string[];
  /** Lifetime in seconds. @default 3600 */
  ttlSeconds?: number;
  tokenUse: 'id' | 'access';
  /** Overrides `iss`, to make a token of a foreign pool in tests. */
  issuer?: string;
  /** Overrides `aud` (ID token) or `client_id` (access token), to make a token of a foreign client. */
  audience?: string;
}

/** An ID token and an access token for the same sign-in, as Cognito's token endpoint returns them. */
export interface TokenPair {
  idToken: string;
  accessToken: string;
  /** Seconds until both expire. */
  expiresIn: number;
}

/** One public key of a JWKS, in Cognito's shape. (Type aliases, not interfaces, so they are assignable
 * to JSON-typed parameters such as aws-jwt-verify's `cacheJwks`.) */
export type PublicJwk = {
  kty: 'RSA';
  alg: 'RS256';
  use: 'sig';
  kid: string;
  n: string;
  e: string;
};

/** A JSON Web Key Set as served at `/{userPoolId}/.well-known/jwks.json`. */
export type Jwks = {
  keys: PublicJwk[];
};

/** The dev issuer returned by {@link createDevIssuer}. */
export interface DevIssuer {
  /** `https://cognito-idp.{region}.amazonaws.com/{userPoolId}` */
  readonly issuer: string;
  readonly userPoolId: string;
  readonly clientId: string;
  readonly kid: string;
  /** Signs one token. */
  mint(options: MintOptions): string;
  /** Signs an ID token and an access token for the same sign-in. */
  mintPair(options: Omit<MintOptions, 'tokenUse' | 'issuer' | 'audience'>): TokenPair;
  /** The public keys, to serve or to hand to `verifier.cacheJwks()`. */
  jwks(): Jwks;
}

/** Default token lifetime: Cognito's default for ID and access tokens (1 hour). */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;

interface StoredKey {
  kid: string;
  privateJwk: Record<string, unknown>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Cognito kids look like base64 digests; a thumbprint of the public key keeps ours stable per key. */
function kidOf(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  return createHash('sha256').update(`${jwk.e}.${jwk.n}`).digest('base64');
}

function loadOrCreateKey(keyFile: string | undefined): { privateKey: KeyObject; kid: string } {
  if (keyFile && existsSync(keyFile)) {
    const stored = JSON.parse(readFileSync(keyFile, 'utf8')) as StoredKey;
    const privateKey = createPrivateKey({ key: stored.privateJwk as never, format: 'jwk' });
    return { privateKey, kid: stored.kid };
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = kidOf(publicKey);
  if (keyFile) {
    mkdirSync(dirname(keyFile), { recursive: true });
    const stored: StoredKey = { kid, privateJwk: privateKey.export({ format: 'jwk' }) as Record<string, unknown> };
    // 0600: it is a signing key, even if only a dev one.
    writeFileSync(keyFile, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  }
  return { privateKey, kid };
}

/**
 * Creates a dev token issuer.
 * @example
 * const issuer = createDevIssuer({ region: 'us-east-1', userPoolId: 'us-east-1_LocalDev01', clientId: 'localdevclient' });
 * const { idToken } = issuer.mintPair({ sub: 'alice', groups: ['admin'] });
 */
export function createDevIssuer(options: DevIssuerOptions): DevIssuer {
  const clock = options.clock ?? systemClock;
  const { privateKey, kid } = loadOrCreateKey(options.keyFile);
  const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const issuer = `https://cognito-idp.${options.region}.amazonaws.com/${options.userPoolId}`;

  function signJwt(payload: Record<string, unknown>): string {
    const header = base64url(JSON.stringify({ kid, alg: 'RS256' }));
    const body = base64url(JSON.stringify(payload));
    const signature = sign('sha256', Buffer.from(`${header}.${body}`), privateKey);
    return `${header}.${body}.${base64url(signature)}`;
  }

  function claims(mint: MintOptions, shared: { iat: number; originJti: string; eventId: string }) {
    const ttl = mint.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    const groups = mint.groups && mint.groups.length > 0 ? { 'cognito:groups': [...mint.groups] } : {};
    const username = mint.username ?? mint.sub;
    const common = {
      auth_time: shared.iat,
      iat: shared.iat,
      exp: shared.iat + ttl,
      jti: randomUUID(),
      origin_jti: shared.originJti,
      event_id: shared.eventId,
    };
    if (mint.tokenUse === 'id') {
      return {
        sub: mint.sub,
        ...groups,
        iss: mint.issuer ?? issuer,
        'cognito:username': username,
        aud: mint.audience ?? options.clientId,
        token_use: 'id',
        ...common,
      };
    }
    return {
      sub: mint.sub,
      ...groups,
      iss: mint.issuer ?? issuer,
      client_id: mint.audience ?? options.clientId,
      token_use: 'access',
      scope: 'aws.cognito.signin.user.admin',
      ...common,
      username,
    };
  }

  function newSignIn() {
    return { iat: Math.floor(clock() / 1000), originJti: randomUUID(), eventId: randomUUID() };
  }

  return {
    issuer,
    userPoolId: options.userPoolId,
    clientId: options.clientId,
    kid,
    mint: (mint) => signJwt(claims(mint, newSignIn())),
    mintPair(mint) {
      // Cognito gives both tokens of one sign-in the same origin_jti, event_id and auth_time.
      const shared = newSignIn();
      return {
        idToken: signJwt(claims({ ...mint, tokenUse: 'id' }, shared)),
        accessToken: signJwt(claims({ ...mint, tokenUse: 'access' }, shared)),
        expiresIn: mint.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS,
      };
    },
    jwks: () => ({
      keys: [{ kty: 'RSA', alg: 'RS256', use: 'sig', kid, n: String(publicJwk.n), e: String(publicJwk.e) }],
    }),
  };
}
