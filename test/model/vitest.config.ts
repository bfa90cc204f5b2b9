import { defineConfig } from 'vitest/config';

// The real-model smoke test (`pnpm test:model`, scripts/test-model): one file against a llama.cpp
// server on a 0.5B model that the script put in place. Not part of `pnpm test`: it needs the model
// (~490 MB) and minutes of CPU.
export default defineConfig({
  test: {
    name: 'model',
    root: new URL('.', import.meta.url).pathname,
    include: ['**/*.test.ts'],
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});
