/**
 * Reads a JWT's claims without verifying it (the service verifies): the client needs `exp` to reconnect
 * before it, and the MQTT transport needs `sub` for its topics. No Node-only API (no Buffer).
 */
export interface TokenClaims {
  sub?: string;
  exp?: number;
  'cognito:groups'?: string[];
  [claim: string]: unknown;
}

/** The token's payload, or `undefined` if it is not a decodable JWT. */
export function decodeTokenClaims(token: string): TokenClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims)
      ? (claims as TokenClaims)
      : undefined;
  } catch {
    return undefined;
  }
}
