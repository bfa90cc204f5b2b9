import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMPOSE_MARKER, newWorker, REDIS_USERS_MARKER, SECRETS_MARKER } from './scaffold.js';
import { discoverWorkers } from './workers.js';

function repo(compose?: string) {
  const root = mkdtempSync(join(tmpdir(), 'flotilla-scaffold-'));
  mkdirSync(join(root, 'packages'));
  if (compose !== undefined) {
    mkdirSync(join(root, 'compose'));
    writeFileSync(join(root, 'compose', 'compose.yaml'), compose);
  }
  return root;
}

describe('new-worker', () => {
  it("writes a worker in the researcher's shape and its compose block above the marker", async () => {
    const root = repo(
      `services:\n  researcher: {}\n  ${COMPOSE_MARKER}\n  egress-proxy:\n    environment:\n` +
        `      EGRESS_SERVICES: orchestrator researcher coder\n      EGRESS_ALLOW_CODER: *llm-hosts\n` +
        `  redis:\n    secrets:\n      - redis_admin\n` +
        `      ${REDIS_USERS_MARKER}\nsecrets:\n  redis_admin: {}\n  ${SECRETS_MARKER}\n`,
    );
    const lines = await newWorker('summarizer', { root, description: 'Summarizes.' });
    for (const f of [
      'package.json',
      'tsconfig.json',
      'src/schemas.ts',
      'src/index.ts',
      'src/agent.ts',
      'src/main.ts',
      'src/schemas.test.ts',
      'src/agent.test.ts',
    ]) {
      expect(existsSync(join(root, 'packages/summarizer', f)), f).toBe(true);
    }
    const pkg = JSON.parse(readFileSync(join(root, 'packages/summarizer/package.json'), 'utf8'));
    expect(pkg.name).toBe('@flotilla/summarizer');
    expect(pkg.scripts.start).toBe('node --import @flotilla/runtime/register dist/main.js');
    expect(readFileSync(join(root, 'packages/summarizer/src/index.ts'), 'utf8')).toContain("role: 'summarizer'");
    // The local mesh finds it by this field, with the same role as its definition.
    expect(await discoverWorkers(join(root, 'packages'))).toEqual([
      { role: 'summarizer', devReplicas: 1, sandbox: false, dir: join(root, 'packages/summarizer') },
    ]);
    // agent.ts and index.ts both import the schemas, never each other.
    expect(readFileSync(join(root, 'packages/summarizer/src/agent.ts'), 'utf8')).not.toContain("'./index.js'");
    const compose = readFileSync(join(root, 'compose/compose.yaml'), 'utf8');
    expect(compose.indexOf('  summarizer:')).toBeGreaterThan(compose.indexOf('researcher'));
    expect(compose.indexOf('  summarizer:')).toBeLessThan(compose.indexOf(COMPOSE_MARKER));
    expect(compose).toContain('PACKAGE: summarizer');
    // Overridable, as flotilla rollout records a promoted image.
    expect(compose).toContain(`    image: \${SUMMARIZER_IMAGE:-flotilla/summarizer:\${FLOTILLA_VERSION:-dev}}\n`);
    // Its own Redis user: the password mounted into redis (which builds the ACL file) and declared.
    expect(compose).toContain('REDIS_USERNAME: worker-summarizer');
    expect(compose).toContain(`      - redis_worker_summarizer\n      ${REDIS_USERS_MARKER}`);
    expect(compose).toContain(
      `  redis_worker_summarizer:\n    file: \${REDIS_WORKER_SUMMARIZER_SECRET_FILE:-./secrets/redis_worker_summarizer}\n  ${SECRETS_MARKER}`,
    );
    // Out only through the egress proxy, which names it and lets it reach the model hosts.
    expect(compose).toContain('    networks: [backend, outbound]\n');
    expect(compose).not.toContain('egress]');
    expect(compose).toContain('EGRESS_SERVICES: orchestrator researcher coder summarizer\n');
    expect(compose).toContain('EGRESS_ALLOW_CODER: *llm-hosts\n      EGRESS_ALLOW_SUMMARIZER: *llm-hosts\n');
    expect(lines.some((l) => l.startsWith('added service "summarizer" and its Redis password'))).toBe(true);
  });

  it('refuses a bad name and an existing package, and changes nothing', async () => {
    const root = repo(`services:\n  ${COMPOSE_MARKER}\n`);
    await expect(newWorker('Bad_Name', { root })).rejects.toThrow(/lowercase letters, digits and dashes/);
    await newWorker('twice', { root });
    const before = readFileSync(join(root, 'compose/compose.yaml'), 'utf8');
    await expect(newWorker('twice', { root })).rejects.toThrow(/already exists/);
    expect(readFileSync(join(root, 'compose/compose.yaml'), 'utf8')).toBe(before);
  });
});
