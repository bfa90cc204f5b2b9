import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type TestProjectConfiguration } from 'vitest/config';

// Tests run against package sources (the @flotilla/source export condition); spawned
// service processes run the built dist/, which `pnpm test` builds first.
const conditions = ['@flotilla/source', 'node', 'import', 'default'];
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const packages = readdirSync(here('./packages'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

const projects: TestProjectConfiguration[] = packages.flatMap((pkg, i) => [
  {
    extends: true,
    test: {
      name: pkg,
      root: here(`./packages/${pkg}`),
      include: ['src/**/*.test.ts'],
      exclude: ['src/**/*.int.test.ts'],
    },
  },
  {
    extends: true,
    test: {
      name: `${pkg}:int`,
      root: here(`./packages/${pkg}`),
      include: ['src/**/*.int.test.ts'],
      // Real Redis, real processes, 2 cores: one file at a time, one package at a time.
      fileParallelism: false,
      sequence: { groupOrder: i + 1 },
      testTimeout: 60_000,
      hookTimeout: 90_000,
    },
  },
]);

// Static checks over the Dockerfile and compose files (hadolint, the hardening policy).
projects.push({ extends: true, test: { name: 'static', root: here('./test/static'), include: ['*.test.ts'] } });

export default defineConfig({
  resolve: { conditions },
  environments: { ssr: { resolve: { conditions } } },
  test: {
    globalSetup: [here('./test/global-setup.ts')],
    passWithNoTests: true,
    projects,
    testTimeout: 20_000,
    hookTimeout: 60_000,
  },
});
