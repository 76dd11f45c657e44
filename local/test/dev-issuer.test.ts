import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevIssuer } from '@viba-realtime/local';
import { CognitoJwtVerifier } from 'aws-jwt-verify';
import { afterAll, describe, expect, it } from 'vitest';

const userPoolId = 'us-east-1_LocalDev01';
const clientId = 'localdevclient';
const dirs: string[] = [];

function decode(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header as string, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload as string, 'base64url').toString()),
  };
}

function verifierFor(issuer: ReturnType<typeof createDevIssuer>) {
  const verifier = CognitoJwtVerifier.create({ userPoolId, tokenUse: null, clientId });
  verifier.cacheJwks(issuer.jwks());
  return verifier;
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('dev issuer', () => {
  const issuer = createDevIssuer({ region: 'us-east-1', userPoolId, clientId });

  it('mints an ID and an access token that aws-jwt-verify accepts as Cognito tokens', async () => {
    const verifier = verifierFor(issuer);
    const { idToken, accessToken, expiresIn } = issuer.mintPair({ sub: 'alice', groups: ['admin', 'staff'] });

    const id = await verifier.verify(idToken);
    const access = await verifier.verify(accessToken);

    expect(expiresIn).toBe(3600);
    expect(id).toMatchObject({
      sub: 'alice',
      'cognito:username': 'alice',
      'cognito:groups': ['admin', 'staff'],
      iss: `https://cognito-idp.us-east-1.amazonaws.com/${userPoolId}`,
      aud: clientId,
      token_use: 'id',
    });
    expect(access).toMatchObject({
      sub: 'alice',
      username: 'alice',
      client_id: clientId,
      token_use: 'access',
      scope: 'aws.cognito.signin.user.admin',
    });
    // One sign-in: both tokens share these, as Cognito's do.
    expect(id.origin_jti).toBe(access.origin_jti);
    expect(id.event_id).toBe(access.event_id);
    expect(id.exp - id.iat).toBe(3600);
  });

  it('puts the kid and RS256 in the header and leaves out cognito:groups when there are none', () => {
    const { header, payload } = decode(issuer.mint({ sub: 'bob', tokenUse: 'id' }));
    expect(header).toEqual({ kid: issuer.kid, alg: 'RS256' });
    expect(payload).not.toHaveProperty('cognito:groups');
    expect(issuer.jwks().keys).toEqual([
      expect.objectContaining({ kid: issuer.kid, kty: 'RSA', alg: 'RS256', use: 'sig' }),
    ]);
  });

  it('mints tokens that the verifier rejects when expired, foreign or of another client', async () => {
    expect.assertions(3);
    const verifier = verifierFor(issuer);
    await expect(verifier.verify(issuer.mint({ sub: 'alice', tokenUse: 'id', ttlSeconds: -10 }))).rejects.toThrow(
      /expired/i,
    );
    await expect(
      verifier.verify(
        issuer.mint({
          sub: 'alice',
          tokenUse: 'id',
          issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other',
        }),
      ),
    ).rejects.toThrow(/iss/i);
    await expect(
      verifier.verify(issuer.mint({ sub: 'alice', tokenUse: 'access', audience: 'otherclient' })),
    ).rejects.toThrow(/client/i);
  });

  it('follows the injected clock', () => {
    const fixed = createDevIssuer({ region: 'us-east-1', userPoolId, clientId, clock: () => 1_700_000_000_000 });
    const { payload } = decode(fixed.mint({ sub: 'alice', tokenUse: 'access', ttlSeconds: 60 }));
    expect(payload).toMatchObject({ iat: 1_700_000_000, auth_time: 1_700_000_000, exp: 1_700_000_060 });
  });

  it('keeps its key in keyFile so tokens survive a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'viba-issuer-'));
    dirs.push(dir);
    const keyFile = join(dir, 'nested', 'key.json');
    const first = createDevIssuer({ region: 'us-east-1', userPoolId, clientId, keyFile });
    const token = first.mint({ sub: 'alice', tokenUse: 'id' });

    const second = createDevIssuer({ region: 'us-east-1', userPoolId, clientId, keyFile });

    expect(second.kid).toBe(first.kid);
    await expect(verifierFor(second).verify(token)).resolves.toMatchObject({ sub: 'alice' });
    expect(createDevIssuer({ region: 'us-east-1', userPoolId, clientId }).kid).not.toBe(first.kid);
  });
});
