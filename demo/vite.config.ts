/**
 * Vite config of the demo chat page. `npm run demo` (`vite demo`) serves it on http://127.0.0.1:5173 next to
 * `npm start`'s emulator; the browser e2e test (`test/browser/`) starts it on a free port. Everything is
 * local: the SDK and the protocol are workspace packages, compiled from their TypeScript sources.
 */
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  clearScreen: false,
  // `viba-source`: the workspace packages' TypeScript sources (their `dist/` exists only in published packages).
  resolve: { conditions: ['viba-source', ...defaultClientConditions] },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
});
