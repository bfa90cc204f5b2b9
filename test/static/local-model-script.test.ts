// scripts/local-model run for real, on what needs no download: the pinned 0.5B/1.5B paths are proven
// by `pnpm test:model`, which rebuilds the 0.5B from its wheels and checks its hash. Here: bad input
// is refused naming it, and any other GGUF is put in place with its hash printed.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from './compose-policy.js';

const script = join(repoRoot, 'scripts', 'local-model');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-local-model-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]) =>
  spawnSync('bash', [script, ...args], {
    env: { ...process.env, FLOTILLA_CACHE: join(dir, 'cache'), LOCAL_MODEL_DEST: join(dir, 'models', 'local.gguf') },
    encoding: 'utf8',
  });

describe('scripts/local-model', () => {
  it('refuses what is neither a known model nor a file, naming it', () => {
    const r = run(['7b']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("'7b' is neither 0.5b, 1.5b nor a file");
    expect(existsSync(join(dir, 'models'))).toBe(false);
  });

  it('refuses a file that is not a GGUF', () => {
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'not a model');
    const r = run([file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('is not a GGUF file');
    expect(existsSync(join(dir, 'models', 'local.gguf'))).toBe(false);
  });

  it('puts any other GGUF in place and prints its sha256, unpinned', () => {
    const file = join(dir, 'other.gguf');
    const body = Buffer.concat([Buffer.from('GGUF'), randomBytes(4096)]);
    writeFileSync(file, body);
    const r = run([file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`sha256 ${createHash('sha256').update(body).digest('hex')}`);
    expect(r.stderr).toContain('not pinned');
    const placed = join(dir, 'models', 'local.gguf');
    expect(readFileSync(placed)).toEqual(body);
    // A hard link on the same filesystem: no second copy of a model that may be gigabytes.
    expect(statSync(placed).ino).toBe(statSync(file).ino);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(file);
  });
});
