// `flotilla rollout` as an operator meets it at a terminal when something is wrong: the built CLI
// (dist/main.js) in a real pseudo-terminal (Python's pty, as tasks-cli.int.test.ts does), reading the
// screen and the exit status. What it does to containers needs a Docker engine and the whole stack:
// test/stack/rollout.ts runs it there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const main = join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'main.js');

/** Runs argv on the slave side of a new pseudo-terminal and copies the screen's bytes to stdout. */
const PTY = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`;

let cwd: string;
beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'flotilla-rollout-cli-'));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

async function atTerminal(args: string[], env: Record<string, string | undefined> = {}) {
  const proc = startProcess('python3', ['-c', PTY, process.execPath, main, 'rollout', ...args], {
    cwd,
    env: { FLOTILLA_URL: 'http://127.0.0.1:9', FLOTILLA_API_KEY: undefined, FLOTILLA_API_KEY_FILE: undefined, ...env },
  });
  const code = await proc.exited;
  return { code, screen: proc.stdout() };
}

describe('flotilla rollout at a terminal', () => {
  it('names the flag of a usage mistake, exits 2 and shows no stack trace', async () => {
    const bad = await atTerminal(['researcher', '--image', 'flotilla/researcher:2', '--canary', 'ten']);
    expect(bad.code).toBe(2);
    expect(bad.screen).toContain(
      'flotilla: --canary ten: expected a percentage of the stable replicas (10%) or a replica count (2)',
    );
    expect(bad.screen).toContain('run flotilla with no arguments for the usage');
    expect(bad.screen).not.toMatch(/\n\s+at /);

    const window = await atTerminal(['researcher', '--image', 'flotilla/researcher:2', '--window', 'soon']);
    expect(window.code).toBe(2);
    expect(window.screen).toContain('flotilla: --window soon: expected a duration such as 60s, 2m or 1m30s');

    const rate = await atTerminal(['researcher', '--image', 'x', '--max-error-rate', '2']);
    expect(rate.code).toBe(2);
    expect(rate.screen).toContain('--max-error-rate 2: expected a number from 0 to 1');

    const noImage = await atTerminal(['researcher']);
    expect(noImage.code).toBe(2);
    expect(noImage.screen).toContain('rollout needs --image IMAGE (or --abort to remove a left canary)');
  });

  it('says which Compose command failed and what to check, exit 1, before touching anything', async () => {
    const r = await atTerminal(['researcher', '--image', 'flotilla/researcher:2'], {
      FLOTILLA_COMPOSE: join(cwd, 'no-such-compose'),
    });
    expect(r.code).toBe(1);
    expect(r.screen).toMatch(/flotilla: \S*no-such-compose config --format json failed: .*ENOENT/);
    expect(r.screen).toContain('check the stack with `docker compose ps`');
    expect(r.screen).not.toMatch(/\n\s+at /);
  });
});
