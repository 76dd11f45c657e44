/**
 * Hand-made JWTs for the auth attack suites, with nothing but `node:crypto`: unsigned (`alg: none`), HMAC-signed
 * with the issuer's public key, RS256-signed by the issuer's own key with chosen claims, or by another key,
 * and valid tokens tampered with after signing.
 *
 * The issuer's private key is read from the key file the emulator keeps in its `dataDir`
 * (`dev-issuer-key.json`, see `local/src/identity/dev-issuer.ts`): with it a test can sign claims the dev
 * issuer's `mint()` cannot express (`nbf`, a future `iat`, no `exp`), so that the one attacked claim is the
 * only difference from a token the authorizers accept.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { readFileSync } from 'node:fs';

export type JwtPart = Record<string, unknown>;

/** The three parts of a compact JWT, decoded (the signature left as base64url). */
export interface DecodedJwt {
  header: JwtPart;
  payload: JwtPart;
  signature: string;
}

const encode = (part: JwtPart): string => Buffer.from(JSON.stringify(part)).toString('base64url');

/** Splits and decodes a compact JWT (no checks: test input only). */
export function decodeJwt(token: string): DecodedJwt {
  const [header = '', payload = '', signature = ''] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as JwtPart,
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as JwtPart,
    signature,
  };
}

/** `header.payload.` with an empty signature, as an `alg: none` token is sent. */
export function unsignedJwt(header: JwtPart, payload: JwtPart): string {
  return `${encode(header)}.${encode(payload)}.`;
}

/** An RS256 JWS over exactly these header and payload, signed with `key`. */
export function signRs256(header: JwtPart, payload: JwtPart, key: KeyObject): string {
  const input = `${encode(header)}.${encode(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** An HS256 JWS: HMAC-SHA256 with `secret`, the classic RS256/HS256 algorithm-confusion forgery. */
export function signHs256(header: JwtPart, payload: JwtPart, secret: string | Buffer): string {
  const input = `${encode(header)}.${encode(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** The token with its payload changed after signing; the original signature is kept. */
export function tamperPayload(token: string, change: (payload: JwtPart) => void): string {
  const [header, , signature] = token.split('.');
  const { payload } = decodeJwt(token);
  change(payload);
  return `${header}.${encode(payload)}.${signature}`;
}

/** The token with one byte of its signature flipped (a byte, not a base64url character: the last
 * character's low bits may be padding that decodes to the same bytes). */
export function tamperSignature(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  const bytes = Buffer.from(signature, 'base64url');
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0x01;
  return `${header}.${payload}.${bytes.toString('base64url')}`;
}

/** The dev issuer's signing key, as the emulator stores it in `{dataDir}/dev-issuer-key.json`. */
export interface IssuerKey {
  kid: string;
  privateKey: KeyObject;
  /** The public key as SPKI PEM, the HMAC secret of the best-known algorithm-confusion forgery. */
  publicPem: string;
  /** The public key as the JWKS serves it (JSON text), the other HMAC secret an attacker can read. */
  publicJwkJson: string;
}

/** Reads the emulator's issuer key from its key file. */
export function readIssuerKey(keyFile: string): IssuerKey {
  const stored = JSON.parse(readFileSync(keyFile, 'utf8')) as { kid: string; privateJwk: JwtPart };
  const privateKey = createPrivateKey({ key: stored.privateJwk as never, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    kid: stored.kid,
    privateKey,
    publicPem: String(publicKey.export({ format: 'pem', type: 'spki' })),
    publicJwkJson: JSON.stringify({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: stored.kid, n: jwk.n, e: jwk.e }),
  };
}

/** An attacker's own RSA key pair, with a kid of the same shape as the issuer's. */
export interface ForeignKey {
  kid: string;
  privateKey: KeyObject;
  /** The public key as a JWK (for an embedded `jwk` header). */
  publicJwk: JwtPart;
}

export function foreignKey(): ForeignKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(`${jwk.e}.${jwk.n}`).digest('base64');
  return { kid, privateKey, publicJwk: { kty: 'RSA', alg: 'RS256', use: 'sig', kid, n: jwk.n, e: jwk.e } };
}
