import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `viba-source`: workspace packages export their TypeScript sources under this condition (their `dist/`
  // exists only in a published package). Vitest appends its defaults (node, development|production).
  resolve: { conditions: ['viba-source'] },
  ssr: { resolve: { conditions: ['viba-source'] } },
  test: {
    include: ['**/test/**/*.test.ts', '**/test/**/*.test.tsx'],
    exclude: ['**/node_modules/**', '**/cdk.out/**'],
    // Each file in its own process: suites start their own servers on ephemeral ports and must not share
    // module state (handler caches, env).
    pool: 'forks',
    testTimeout: 30_000,
    // The AWS SDK's "Node 22 needed from 2027" notice would repeat in every suite's output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 60_000,
  },
});
