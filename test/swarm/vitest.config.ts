import { defineConfig } from 'vitest/config';

// The Swarm suite (`pnpm test:swarm`, scripts/test-swarm): one file, in order, against one stack that
// the global setup deploys on a single-node swarm. Not part of `pnpm test`: it needs a Docker engine.
export default defineConfig({
  test: {
    name: 'swarm',
    root: new URL('.', import.meta.url).pathname,
    include: ['**/*.test.ts'],
    globalSetup: ['./setup.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 300_000,
    hookTimeout: 900_000,
  },
});
