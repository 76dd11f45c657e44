/**
 * Validation of `GET /dev/token?sub=alice&groups=admin,staff&ttl=3600&username=alice`, the emulator's
 * stand-in for a Cognito sign-in. A bad parameter gets a 400 that names it, so a typo in a script is
 * obvious instead of producing a token for the wrong user.
 */
import { DEFAULT_TOKEN_TTL_SECONDS } from './dev-issuer.js';

/** User ids and usernames: what Cognito subs and usernames look like in practice (uuids, emails, names). */
export const DEV_SUB_PATTERN = /^[A-Za-z0-9_.@+:-]{1,128}$/;
/** Cognito group names are free text; the emulator keeps to a shell- and URL-friendly subset. */
export const DEV_GROUP_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
/** Longest token lifetime the emulator mints: one day (Cognito allows ID/access tokens of 5 min to 1 day). */
export const DEV_TOKEN_MAX_TTL_SECONDS = 86_400;

/** A valid `/dev/token` request. */
export interface DevTokenQuery {
  sub: string;
  username: string;
  groups: string[];
  ttlSeconds: number;
}

/** The outcome of {@link parseDevTokenQuery}: the request, or a message naming the bad parameter. */
export type DevTokenQueryResult =
  | { ok: true; value: DevTokenQuery }
  | { ok: false; parameter: string; message: string };

/**
 * Parses and validates the query of `/dev/token`.
 * @example
 * parseDevTokenQuery(new URLSearchParams('sub=alice&groups=admin')) // { ok: true, value: { sub: 'alice', ... } }
 */
export function parseDevTokenQuery(params: URLSearchParams): DevTokenQueryResult {
  const sub = params.get('sub');
  if (sub === null || sub === '') {
    return { ok: false, parameter: 'sub', message: 'sub is required, e.g. /dev/token?sub=alice' };
  }
  if (!DEV_SUB_PATTERN.test(sub)) {
    return { ok: false, parameter: 'sub', message: `sub must match ${DEV_SUB_PATTERN.source}` };
  }
  const username = params.get('username') ?? sub;
  if (!DEV_SUB_PATTERN.test(username)) {
    return { ok: false, parameter: 'username', message: `username must match ${DEV_SUB_PATTERN.source}` };
  }
  const rawGroups = params.get('groups') ?? '';
  const groups = rawGroups === '' ? [] : rawGroups.split(',').map((g) => g.trim());
  const badGroup = groups.find((g) => !DEV_GROUP_PATTERN.test(g));
  if (badGroup !== undefined) {
    return {
      ok: false,
      parameter: 'groups',
      message: `groups must be comma-separated names matching ${DEV_GROUP_PATTERN.source}; got ${JSON.stringify(badGroup)}`,
    };
  }
  const rawTtl = params.get('ttl');
  let ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS;
  if (rawTtl !== null) {
    ttlSeconds = /^\d+$/.test(rawTtl) ? Number(rawTtl) : Number.NaN;
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > DEV_TOKEN_MAX_TTL_SECONDS) {
      return {
        ok: false,
        parameter: 'ttl',
        message: `ttl must be an integer number of seconds from 1 to ${DEV_TOKEN_MAX_TTL_SECONDS}`,
      };
    }
  }
  return { ok: true, value: { sub, username, groups: [...new Set(groups)], ttlSeconds } };
}
