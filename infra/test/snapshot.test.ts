/**
 * A snapshot of the app stack's template: any change to what `cdk deploy` would do shows up as a diff to review.
 * Asset hashes are replaced by a placeholder (bundling is skipped in tests, and the hashes change with every
 * edit of a handler or a CDK upgrade), so the snapshot holds only what the template says, the same on every
 * machine. Update it with `npx vitest run infra/test/snapshot.test.ts -u` after a deliberate change.
 */
import { describe, expect, it } from 'vitest';
import { synthAppStack } from './support.js';

const ASSET_KEY = /^[0-9a-f]{64}\.zip$/;

/** The template with every asset's S3 key made `<asset>.zip`. */
function normalized(template: unknown): unknown {
  return JSON.parse(JSON.stringify(template), (_key, value: unknown) =>
    typeof value === 'string' && ASSET_KEY.test(value) ? '<asset>.zip' : value,
  );
}

describe('VibaRealtimeStack template', () => {
  it('matches the snapshot', () => {
    const { template } = synthAppStack();

    expect(normalized(template.toJSON())).toMatchSnapshot();
  });

  it('holds nothing specific to this machine or checkout', () => {
    const text = JSON.stringify(normalized(synthAppStack().template.toJSON()));

    expect(text).not.toContain(process.cwd());
    expect(text).not.toContain(new URL('../..', import.meta.url).pathname.replace(/\/$/, ''));
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    expect(text).not.toMatch(/\d{12}/); // no account id: the stack is environment-agnostic
  });
});
