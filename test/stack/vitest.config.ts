import { defineConfig } from 'vitest/config';

// The stack suite (`bash scripts/test-stack`): one file, run in order against one Compose stack that
// the global setup builds and starts. Not part of `pnpm test`: it needs a Docker engine and minutes.
export default defineConfig({
  test: {
    name: 'stack',
    root: new URL('.', import.meta.url).pathname,
    include: ['**/*.test.ts'],
    globalSetup: ['./setup.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 300_000,
    hookTimeout: 1_800_000,
  },
});
