import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/cdk.out/**'],
    // Each file in its own process: suites start their own servers on ephemeral ports and must not share
    // module state (handler caches, env).
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
