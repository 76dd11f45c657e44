/** Docs drift guard: docs/PROTOCOL.md must name everything the contract defines. */
import { readFileSync } from 'node:fs';
import { APIGW_LIMITS, ERROR_CODES, IOT_LIMITS, LIMITS, WS_ROUTES } from '@viba-realtime/protocol';
import { describe, expect, it } from 'vitest';

const protocolDoc = readFileSync(new URL('../docs/PROTOCOL.md', import.meta.url), 'utf8');

describe('docs/PROTOCOL.md', () => {
  it.each(Object.keys(ERROR_CODES))('documents error code %s', (code) => {
    expect(protocolDoc).toContain(`| \`${code}\` |`);
  });
  it.each(Object.entries({ ...LIMITS, ...APIGW_LIMITS, ...IOT_LIMITS }))(
    'documents limit %s with its value',
    (name, value) => {
      expect(protocolDoc).toMatch(new RegExp(`\\| \`${name}\` \\| ${value}\\b`));
    },
  );
  it.each(WS_ROUTES.map((r) => r.routeKey))('documents route %s', (routeKey) => {
    expect(protocolDoc).toContain(`| \`${routeKey}\` |`);
  });
});
