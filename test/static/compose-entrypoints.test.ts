// The shell entrypoints compose.yaml gives Redis and Chroma's gate, run for real with `sh` as the
// containers run them: what they refuse (exit 78, naming the file, never printing a secret) and what
// the ACL file holds. Whether Redis and the services accept that file is proven against a real
// redis-server in packages/cli/src/redis-acl.int.test.ts.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from './compose-policy.js';

const aclScript = join(repoRoot, 'compose', 'redis', 'users-acl.sh');
const gateScript = join(repoRoot, 'compose', 'chroma-gate', 'entrypoint.sh');
const USERS = ['redis_admin', 'redis_orchestrator', 'redis_dashboard', 'redis_worker_researcher'];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-entrypoints-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sh = (script: string, env: Record<string, string>) =>
  spawnSync('sh', [script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' });

describe('redis/users-acl.sh', () => {
  const passwords = () => {
    const pw = Object.fromEntries(USERS.map((u) => [u, randomBytes(20).toString('hex')]));
    for (const [u, p] of Object.entries(pw)) writeFileSync(join(dir, u), `${p}\n`);
    return pw;
  };
  const run = (env: Record<string, string> = {}) =>
    sh(aclScript, { REDIS_SECRETS_DIR: dir, REDIS_ACL_FILE: join(dir, 'users.acl'), QUEUE_PREFIX: 'fq', ...env });

  it('writes one user per password file, hashed, with the default user off', () => {
    const pw = passwords();
    const r = run();
    expect(r.status, r.stderr).toBe(0);
    const acl = readFileSync(join(dir, 'users.acl'), 'utf8');
    const users = acl.split('\n').filter(Boolean);
    expect(users.map((l) => l.split(' ')[1])).toEqual([
      'default',
      'admin',
      'orchestrator',
      'dashboard',
      'worker-researcher',
    ]);
    expect(users[0]).toMatch(/^user default off /);
    for (const [u, p] of Object.entries(pw)) {
      expect(acl).not.toContain(p);
      expect(acl, u).toContain(`#${createHash('sha256').update(p).digest('hex')}`);
    }
    expect(users.find((l) => l.includes('worker-researcher'))).toContain('~fq:role.researcher:* ');
  });

  it.each([
    [
      'an empty password file',
      (pw: string) => writeFileSync(join(dir, 'redis_dashboard'), pw.slice(0, 0)),
      /redis_dashboard: .* is empty/,
    ],
    ['a missing password file', () => rmSync(join(dir, 'redis_orchestrator')), /redis_orchestrator: .* is missing/],
    [
      'an empty worker password file',
      () => writeFileSync(join(dir, 'redis_worker_researcher'), ''),
      /redis_worker_researcher: .* is empty/,
    ],
    [
      'a password with a space',
      () => writeFileSync(join(dir, 'redis_admin'), 'not a token but long enough'),
      /redis_admin: .* characters other than/,
    ],
    ['a short password', () => writeFileSync(join(dir, 'redis_admin'), 'short'), /redis_admin: .* at least 16/],
  ])('exits 78 naming the file on %s, printing no password', (_, breakIt, message) => {
    const pw = passwords();
    breakIt('');
    const r = run();
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(new RegExp(`^config error: ${message.source}`));
    for (const p of Object.values(pw)) expect(r.stderr + r.stdout).not.toContain(p);
  });

  it('refuses a prefix that would widen every key pattern', () => {
    passwords();
    const r = run({ QUEUE_PREFIX: 'fq*' });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/^config error: QUEUE_PREFIX: /);
  });
});

describe('chroma-gate/entrypoint.sh', () => {
  it.each([
    ['no token file named', {}, /^config error: CHROMA_TOKEN_FILE: required/],
    [
      'a missing file',
      { CHROMA_TOKEN_FILE: '/nonexistent/chroma_token' },
      /^config error: CHROMA_TOKEN_FILE: cannot read/,
    ],
  ])('exits 78 on %s', (_, env, message) => {
    const r = sh(gateScript, env as Record<string, string>);
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(message);
  });

  it.each([
    ['empty', '', /is empty/],
    ['a quote in it, which would change nginx config', 'abcdefgh"; return 200; #', /characters other than/],
    ['too short', 'abc123', /at least 16/],
  ])('exits 78 on a token that is %s, without printing it', (_, token, message) => {
    const file = join(dir, 'chroma_token');
    writeFileSync(file, token);
    const r = sh(gateScript, { CHROMA_TOKEN_FILE: file });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(message);
    if (token) expect(r.stderr).not.toContain(token);
  });
});
