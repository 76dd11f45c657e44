/** Telling addresses that only this machine can reach from all others. */
import { isIP } from 'node:net';

/**
 * Whether a listen address only accepts connections from this machine: `localhost`, 127.0.0.0/8, `::1`
 * and their IPv4-mapped form. Wildcards (`0.0.0.0`, `::`) and any other name or address are not.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (bare === 'localhost') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice('::ffff:'.length) : bare;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  if (isIP(bare) !== 6) return false;
  // URL canonicalises IPv6 (`0:0:0:0:0:0:0:1` -> `[::1]`; `::ffff:127.0.0.1` -> `[::ffff:7f00:1]`, where
  // 127.0.0.0/8 is every `7fXX:XXXX`), so these comparisons cover every spelling.
  const canonical = new URL(`http://[${bare}]/`).hostname;
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/** Whether a URL points at this machine (see {@link isLoopbackHost}). */
export function isLoopbackUrl(url: string): boolean {
  return isLoopbackHost(new URL(url).hostname);
}
