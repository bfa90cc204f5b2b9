import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The chaos suite (issue 16, docs/chaos.md): real processes, signals and restarts, minutes per file, so it
// is not part of `pnpm test`. `pnpm test:chaos` builds dist/ first (the services run from it).
const conditions = ['@flotilla/source', 'node', 'import', 'default'];
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: { conditions },
  environments: { ssr: { resolve: { conditions } } },
  test: {
    name: 'chaos',
    root: here('.'),
    include: ['*.test.ts'],
    globalSetup: [here('../global-setup.ts')],
    // One file at a time: each one loads the machine on its own.
    fileParallelism: false,
    testTimeout: 15 * 60_000,
    hookTimeout: 120_000,
  },
});
