// `flotilla rollout` as an operator meets it at a terminal when something is wrong: the built CLI
// (dist/main.js) in a real pseudo-terminal (terminal.test.helpers.ts), reading the screen and the exit
// status. What it does to containers needs a Docker engine and the whole stack: test/stack/rollout.ts
// runs it there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, STACK_TRACE } from './terminal.test.helpers.js';

let cwd: string;
beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'flotilla-rollout-cli-'));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));
const cli = cliRunner(() => cwd);
afterEach(() => cli.stop());

async function atTerminal(args: string[], env: Record<string, string> = {}) {
  const r = await cli.exec(['rollout', ...args], { tty: true, env: { FLOTILLA_URL: 'http://127.0.0.1:9', ...env } });
  return { code: r.code, screen: r.stdout };
}

describe('flotilla rollout at a terminal', () => {
  it('names the flag of a usage mistake, exits 2 and shows no stack trace', async () => {
    const bad = await atTerminal(['researcher', '--image', 'flotilla/researcher:2', '--canary', 'ten']);
    expect(bad.code).toBe(2);
    expect(bad.screen).toContain(
      'flotilla: --canary ten: expected a percentage of the stable replicas (10%) or a replica count (2)',
    );
    expect(bad.screen).toContain('flotilla --help lists the commands and their options');
    expect(bad.screen).not.toMatch(STACK_TRACE);

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
    expect(r.screen).not.toMatch(STACK_TRACE);
  });
});
