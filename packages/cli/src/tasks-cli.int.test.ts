// The task commands as a user runs them: the built CLI (dist/main.js) as a real process, in a
// pseudo-terminal when the test is about what a terminal shows, against a real local mesh (the
// orchestrator and a researcher on real Redis and Chroma, the offline model). Colours, in-place
// redraws and exit statuses only exist between real processes and a real TTY, so nothing here is
// faked (terminal.test.helpers.ts has the PTY and the screen reader). Build first (pnpm build).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TaskView } from '@flotilla/contracts';
import { freePort, waitFor } from '@flotilla/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Mesh, startMesh } from './mesh.js';
import { COLOUR, CURSOR_UP, cliRunner, finished, screen, startKeyedOrchestrator } from './terminal.test.helpers.js';

const _orchestratorDir = fileURLToPath(new URL('../../orchestrator', import.meta.url));

let cwd: string;
const cli = cliRunner(() => cwd);
const run = cli.run;

const taskIdIn = (text: string) => /task\s+([0-9a-f-]{36})/.exec(text)?.[1];

/** A web server the researcher fetches: /slow answers after a while, /hold/:id when released. */
async function startSite() {
  const held = new Map<string, ServerResponse[]>();
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.push(url.pathname);
    if (url.pathname.startsWith('/hold/')) held.set(url.pathname, [...(held.get(url.pathname) ?? []), res]);
    else setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(`page ${url.pathname}`), 200);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const list of held.values()) for (const res of list) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

afterEach(async () => {
  await cli.stop();
});

describe('flotilla task commands against a running mesh', () => {
  let mesh: Mesh;
  let site: Awaited<ReturnType<typeof startSite>>;
  let env: Record<string, string>;
  const replica = () => mesh.services.find((s) => s.role === 'researcher')?.name;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
    site = await startSite();
    mesh = await startMesh({
      only: ['researcher'],
      replicas: { researcher: 1 },
      sandbox: false,
      env: { HTTP_ALLOWLIST: new URL(site.base).host, SHUTDOWN_GRACE_MS: '3000' },
    });
    env = { FLOTILLA_URL: mesh.url };
  }, 120_000);

  afterAll(async () => {
    await mesh?.stop();
    await site?.close();
    rmSync(cwd, { recursive: true, force: true });
  }, 120_000);

  it('submit --watch in a terminal: one frame redrawn in place, in colour, then the answer; exit 0', async () => {
    const watch = await finished(
      run(['submit', `fetch ${site.base}/page-tty`, '--watch', '--max-steps', '6'], { tty: true, env }),
    );
    expect(watch.code).toBe(0);
    expect(watch.stdout).toMatch(COLOUR);
    expect(watch.stdout).toMatch(CURSOR_UP);
    const shown = screen(watch.stdout);
    const taskId = taskIdIn(shown.join('\n')) as string;
    // Redrawn, not appended: the header is on the screen once although several frames were drawn.
    expect(shown.filter((l) => l.startsWith(`task ${taskId}`))).toHaveLength(1);
    expect(watch.stdout.split(taskId).length - 1).toBeGreaterThan(1);
    expect(shown.join('\n')).toContain(`s1  researcher  completed  on ${replica()}`);
    expect(shown.join('\n')).toMatch(/steps [█░]{8} \d+\/6/);
    const view = JSON.parse((await finished(run(['status', taskId, '--json'], { env }))).stdout) as TaskView;
    expect(view.status).toBe('completed');
    const answerLine = (view.answer ?? '').split('\n')[0] as string;
    expect(answerLine).not.toBe('');
    expect(shown.some((l) => l.includes(answerLine.slice(0, 60)))).toBe(true);
    expect(shown.some((l) => l.startsWith('completed'))).toBe(true);
  });

  it('submit --watch into a pipe: plain appended lines, no escape codes, the answer; exit 0', async () => {
    const watch = await finished(run(['submit', `fetch ${site.base}/page-pipe`, '--watch'], { env }));
    expect(watch.code).toBe(0);
    expect(watch.stdout).not.toContain('\x1b');
    expect(watch.stdout).toContain(`\nstarted   s1 researcher on ${replica()}\n`);
    expect(watch.stdout).toContain(`\nfinished  s1 researcher on ${replica()}: finish`);
    expect(watch.stdout).toContain('Offline demo answer for: fetch');
    expect(watch.stdout).toMatch(/^completed$/m);
  });

  it('colours status in a terminal unless NO_COLOR is set', async () => {
    const { stdout } = await finished(run(['submit', `fetch ${site.base}/page-colour`], { env }));
    const taskId = stdout.trim();
    await waitFor(async () => (await finished(run(['status', taskId], { env }))).stdout.includes('completed'), {
      what: 'task completed',
    });
    const coloured = await finished(run(['status', taskId], { tty: true, env }));
    const plain = await finished(run(['status', taskId], { tty: true, env: { ...env, NO_COLOR: '1' } }));
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toMatch(COLOUR);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toMatch(COLOUR);
    expect(plain.stdout).toContain(`task ${taskId}  completed`);
  });

  it('--json: submit, status, tasks and a watched submit print bodies that parse', async () => {
    const accepted = JSON.parse(
      (await finished(run(['submit', `fetch ${site.base}/page-json`, '--json'], { env }))).stdout,
    );
    expect(accepted.taskId).toMatch(/^[0-9a-f-]{36}$/);
    expect(accepted.links.events).toBe(`/v1/tasks/${accepted.taskId}/events`);
    const status = await finished(run(['status', accepted.taskId, '--json'], { tty: true, env }));
    // In a terminal too: --json is for machines, so no colour even there.
    expect(status.stdout).not.toMatch(COLOUR);
    expect(JSON.parse(status.stdout).taskId).toBe(accepted.taskId);
    const list = JSON.parse((await finished(run(['tasks', '--json', '--limit', '50'], { env }))).stdout);
    expect(list.tasks.map((t: { taskId: string }) => t.taskId)).toContain(accepted.taskId);
    const watched = await finished(run(['submit', `fetch ${site.base}/page-json2`, '--watch', '--json'], { env }));
    expect(watched.code).toBe(0);
    expect((JSON.parse(watched.stdout) as TaskView).status).toBe('completed');
    const done = JSON.parse((await finished(run(['tasks', '--json', '--status', 'completed'], { env }))).stdout);
    expect(done.tasks.length).toBeGreaterThan(0);
    expect(done.tasks.every((t: { status: string }) => t.status === 'completed')).toBe(true);
  });

  it('cancel stops a running task, and the watching submit exits with the cancelled status (4)', async () => {
    const watch = run(['submit', `fetch ${site.base}/hold/cancel-me`, '--watch'], { tty: true, env });
    const taskId = await waitFor(() => taskIdIn(screen(watch.stdout()).join('\n')), {
      what: 'the task id on screen',
    });
    await waitFor(() => site.hits.includes('/hold/cancel-me'), { what: 'the fetch in flight' });
    const cancel = await finished(run(['cancel', taskId], { env }));
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain(`${taskId} cancelled`);
    const ended = await finished(watch);
    expect(ended.code).toBe(4);
    expect(screen(ended.stdout).some((l) => l.startsWith('cancelled'))).toBe(true);
    // Cancelling again is refused with the reason, not a stack trace.
    const again = await finished(run(['submit', `fetch ${site.base}/page-after`, '--watch'], { env }));
    expect(again.code).toBe(0);
    const late = await finished(run(['cancel', taskIdIn(again.stdout) as string], { env }));
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('already completed');
  });

  it('a task that is not there: 404 said as "no such task for this key", exit 1', async () => {
    const missing = await finished(run(['status', '00000000-0000-4000-8000-000000000000'], { env }));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no task 00000000-0000-4000-8000-000000000000 for this key');
    expect(missing.stderr).not.toMatch(/^\s+at /m);
  });

  it('a wrong FLOTILLA_URL: which URL, how to start the stack, no stack trace, exit 1', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const failed = await finished(run(['tasks'], { env: { FLOTILLA_URL: url } }));
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`cannot reach the flotilla API at ${url}`);
    expect(failed.stderr).toContain('pnpm dev');
    expect(failed.stderr).toContain('docker compose up');
    expect(failed.stderr).not.toMatch(/^\s+at /m);
    expect(failed.stdout).toBe('');
  });
});

describe('flotilla against an orchestrator that wants keys', () => {
  let url: string;
  let orchestrator: Awaited<ReturnType<typeof startKeyedOrchestrator>> | undefined;
  let goodKey: string;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'flotilla-cli-auth-'));
    const keysFile = join(cwd, 'api_keys');
    const added = await finished(run(['keys', 'add', 'me', '--file', keysFile]));
    goodKey = added.stdout.trim();
    orchestrator = await startKeyedOrchestrator(keysFile);
    url = orchestrator.url;
  }, 60_000);

  afterAll(async () => {
    await orchestrator?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('401 with a wrong key names the setting it came from and never prints the key', async () => {
    const wrong = 'flk_wrongwrongwrongwrongwrongwrongwrongwrongwro';
    const failed = await finished(run(['tasks'], { env: { FLOTILLA_URL: url, FLOTILLA_API_KEY: wrong } }));
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('refused the key from FLOTILLA_API_KEY (401)');
    expect(failed.stderr).toContain('FLOTILLA_API_KEY_FILE');
    expect(failed.stderr).not.toContain(wrong);
    expect(failed.stderr).not.toMatch(/^\s+at /m);
  });

  it('401 with no key says none was sent and where to put one; the key in ./.flotilla-key works', async () => {
    const none = await finished(run(['tasks'], { env: { FLOTILLA_URL: url } }));
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('none was sent (401)');
    expect(none.stderr).toContain('.flotilla-key');
    // The control case: the same command, with the key where the quick start writes it.
    writeFileSync(join(cwd, '.flotilla-key'), `${goodKey}\n`);
    try {
      const ok = await finished(run(['tasks', '--json'], { env: { FLOTILLA_URL: url } }));
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout).tasks).toEqual([]);
      expect(ok.stdout + ok.stderr).not.toContain(goodKey);
    } finally {
      rmSync(join(cwd, '.flotilla-key'));
    }
  });
});
