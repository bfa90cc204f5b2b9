import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultLlmProvider } from './mesh.js';
import { chooseReplicas, discoverWorkers } from './workers.js';

const repoPackages = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A packages/ directory holding one package.json per entry (undefined: a folder with none). */
function packages(manifests: Record<string, object | undefined>): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-workers-'));
  for (const [name, pkg] of Object.entries(manifests)) {
    mkdirSync(join(dir, name));
    if (pkg) writeFileSync(join(dir, name, 'package.json'), JSON.stringify({ name: `@flotilla/${name}`, ...pkg }));
  }
  return dir;
}

describe('worker discovery', () => {
  it("finds this repository's workers from their package.json, and nothing else", async () => {
    const found = await discoverWorkers(repoPackages);
    expect(found.map(({ role, devReplicas, sandbox }) => ({ role, devReplicas, sandbox }))).toEqual([
      { role: 'coder', devReplicas: 1, sandbox: true },
      { role: 'researcher', devReplicas: 3, sandbox: false },
    ]);
    expect(found[1]?.dir).toBe(join(repoPackages, 'researcher'));
  });

  it('defaults devReplicas to 1, sandbox to false, and skips packages without the field or without a package.json', async () => {
    const dir = packages({
      summarizer: { flotilla: { role: 'summarizer' } },
      orchestrator: {},
      scratch: undefined,
    });
    expect(await discoverWorkers(dir)).toEqual([
      { role: 'summarizer', devReplicas: 1, sandbox: false, dir: join(dir, 'summarizer') },
    ]);
  });

  it('rejects a malformed field and a role served twice, naming the file', async () => {
    const bad = packages({ w: { flotilla: { role: 'Bad Role', devReplicas: -1, replicas: 2 } } });
    const error = discoverWorkers(bad);
    await expect(error).rejects.toThrow(join(bad, 'w', 'package.json'));
    await expect(error).rejects.toThrow(/flotilla\.role: lowercase.*flotilla\.devReplicas: .*flotilla: .*replicas/);
    const twice = packages({ a: { flotilla: { role: 'same' } }, b: { flotilla: { role: 'same' } } });
    await expect(discoverWorkers(twice)).rejects.toThrow(/role "same" is already served by/);
  });
});

describe('replica choice', () => {
  const workers = [
    { role: 'coder', devReplicas: 1, sandbox: true, dir: '/p/coder' },
    { role: 'idle', devReplicas: 0, sandbox: false, dir: '/p/idle' },
    { role: 'researcher', devReplicas: 3, sandbox: false, dir: '/p/researcher' },
  ];
  const counts = (choice: Parameters<typeof chooseReplicas>[1]) =>
    Object.fromEntries(chooseReplicas(workers, choice).map(({ worker, count }) => [worker.role, count]));

  it('starts devReplicas of each role, overridden per role; 0 leaves a role out', () => {
    expect(counts({})).toEqual({ coder: 1, researcher: 3 });
    expect(counts({ replicas: { researcher: 1, coder: 0, idle: 2 } })).toEqual({ researcher: 1, idle: 2 });
  });

  it('starts only the listed roles, at least one replica each', () => {
    expect(counts({ only: ['idle', 'researcher'] })).toEqual({ idle: 1, researcher: 3 });
    expect(counts({ only: ['researcher'], replicas: { researcher: 2 } })).toEqual({ researcher: 2 });
  });

  it('refuses a role no package serves', () => {
    expect(() => counts({ replicas: { reseacher: 1 } })).toThrow(/no worker package serves role "reseacher"/);
    expect(() => counts({ only: ['nope'] })).toThrow(/found: coder, idle, researcher/);
  });
});

describe('the mesh model', () => {
  it('asks for the offline model only when nothing chooses a real one', () => {
    expect(defaultLlmProvider({})).toBe('offline');
    expect(defaultLlmProvider({ LLM_PROVIDER: 'anthropic' })).toBeUndefined();
    expect(defaultLlmProvider({ OPENAI_API_KEY_FILE: '/run/secrets/key' })).toBeUndefined();
    expect(defaultLlmProvider({ LLM_BASE_URL: 'http://ollama:11434' })).toBeUndefined();
    // Set but empty, as a blank line in an env file leaves it: chooses nothing.
    expect(defaultLlmProvider({ ANTHROPIC_API_KEY: '' })).toBe('offline');
  });
});
