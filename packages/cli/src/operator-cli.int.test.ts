// The operator commands as an on-call engineer runs them: the built CLI as a real process (in a
// pseudo-terminal where the test reads the screen) against a real local mesh (the orchestrator and
// two researcher replicas on real Redis and Chroma, the offline model), then against an
// orchestrator with a real keys file for the admin/tasks scope errors. A failed job is made to
// fail for real (a job with invalid input on the role's queue, which the researcher refuses), and
// the kill switch is checked by a real tool call being refused. Build first (pnpm build).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queueNames, type RoleReplicas, redisKeys, type TaskView } from '@flotilla/contracts';
import { deregister, heartbeat } from '@flotilla/runtime/worker';
import { freePort, waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Mesh, startMesh } from './mesh.js';
import { COLOUR, cliRunner, STACK_TRACE, screen, startKeyedOrchestrator } from './terminal.test.helpers.js';

const _orchestratorDir = fileURLToPath(new URL('../../orchestrator', import.meta.url));

let cwd: string;
const cli = cliRunner(() => cwd);

afterEach(async () => {
  await cli.stop();
});

/** A web server the researcher fetches, counting which pages were asked for. */
async function startSite() {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(new URL(req.url ?? '/', 'http://x').pathname);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('a page');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The cells of a table row (columns are two or more spaces apart). */
const cells = (line: string | undefined) => (line ?? '').trim().split(/\s{2,}/);

describe('flotilla operator commands against a running mesh', () => {
  const VERSION = 'cli-test-7';
  let mesh: Mesh;
  let site: Awaited<ReturnType<typeof startSite>>;
  let env: Record<string, string>;
  let queue: Queue;
  const replicas = () => mesh.services.filter((s) => s.role === 'researcher').map((s) => s.name);

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'flotilla-cli-ops-'));
    site = await startSite();
    mesh = await startMesh({
      only: ['researcher'],
      replicas: { researcher: 2 },
      sandbox: false,
      env: { HTTP_ALLOWLIST: new URL(site.base).host, SHUTDOWN_GRACE_MS: '3000' },
      roleEnv: { researcher: { SERVICE_VERSION: VERSION } },
    });
    env = { FLOTILLA_URL: mesh.url };
    queue = new Queue(queueNames.role('researcher'), {
      connection: { url: mesh.redisUrl },
      prefix: mesh.prefix,
    });
  }, 120_000);

  afterAll(async () => {
    await queue?.close();
    await mesh?.stop();
    await site?.close();
    rmSync(cwd, { recursive: true, force: true });
  }, 120_000);

  it('roles: each replica of the role, live, its heartbeat age and image version; --json matches', async () => {
    const shown = await cli.exec(['roles'], { tty: true, env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(COLOUR);
    const text = screen(shown.stdout).join('\n');
    expect(text).toContain('researcher  2/2 live');
    for (const name of replicas()) expect(text).toMatch(new RegExp(`${name}\\s+live\\s+[0-9.]+m?s ago\\s+${VERSION}`));
    const json = await cli.exec(['roles', '--json'], { tty: true, env });
    expect(json.stdout).not.toMatch(COLOUR);
    const body = JSON.parse(json.stdout) as { roles: RoleReplicas[] };
    const researcher = body.roles.find((r) => r.role === 'researcher');
    expect(researcher?.replicas.map((r) => r.replica).sort()).toEqual(replicas().sort());
    expect(researcher?.replicas.every((r) => r.live && r.version === VERSION)).toBe(true);
  });

  it('roles: a role that scales to zero shows as idle at 0/0, not as down', async () => {
    const redis = new Redis(mesh.redisUrl);
    try {
      const summarizer = { role: 'summarizer', replica: 'summarizer-1' };
      await heartbeat(redis, mesh.prefix, {
        ...summarizer,
        description: 'Summarizes',
        inputSchema: { type: 'object' },
        version: VERSION,
        scaleToZero: { forgetAfterMs: 60_000 },
      });
      await deregister(redis, mesh.prefix, summarizer);
      const shown = await cli.exec(['roles'], { tty: true, env });
      expect(shown.code).toBe(0);
      const text = screen(shown.stdout).join('\n');
      expect(text).toContain('summarizer  0/0 live, scales to zero');
      expect(text).toContain('researcher  2/2 live');
      const json = JSON.parse((await cli.exec(['roles', '--json'], { env })).stdout) as { roles: RoleReplicas[] };
      expect(json.roles.find((r) => r.role === 'summarizer')).toMatchObject({ replicas: [], scalesToZero: true });
    } finally {
      await redis.del(redisKeys(mesh.prefix).roleMeta('summarizer'));
      await redis.srem(redisKeys(mesh.prefix).roles, 'summarizer');
      redis.disconnect();
    }
  });

  it('queues: the role’s counts after a task ran, as the table and as --json', async () => {
    const watched = await cli.exec(['submit', `fetch ${site.base}/queues`, '--watch'], { env });
    expect(watched.code).toBe(0);
    const shown = await cli.exec(['queues'], { tty: true, env });
    expect(shown.code).toBe(0);
    const rows = screen(shown.stdout);
    const header = cells(rows.find((l) => l.startsWith('ROLE')));
    const row = cells(rows.find((l) => l.startsWith('researcher')));
    const col = (name: string) => row[header.indexOf(name)];
    const body = JSON.parse((await cli.exec(['queues', '--json'], { env })).stdout) as {
      queues: { role: string; completed: number; failed: number; waiting: number; jobMs: { p50: number } | null }[];
    };
    const stats = body.queues.find((q) => q.role === 'researcher');
    expect(stats?.completed).toBeGreaterThanOrEqual(1);
    expect(col('COMPLETED')).toBe(String(stats?.completed));
    expect(col('WAITING')).toBe(String(stats?.waiting));
    expect(stats?.jobMs).not.toBeNull();
    expect(col('P50')).toMatch(/^[0-9.]+(ms|s)$/);
  });

  it('failed lists a job that failed for real, with its reason; retry puts it back and it runs again', async () => {
    const jobId = `bad-input-${Date.now()}`;
    // Not an envelope: the researcher refuses it as invalid input, which fails the job at once.
    await queue.add('subtask', { not: 'an envelope' }, { jobId });
    const listed = await waitFor(
      async () => {
        const out = await cli.exec(['failed', 'researcher'], { tty: true, env });
        return screen(out.stdout).find((l) => l.startsWith(jobId));
      },
      { what: 'the job in the failed list' },
    );
    expect(listed).toContain('invalid_input');
    expect(cells(listed)[1]).toBe('1');
    type Page = { jobs: { jobId: string; attemptsMade: number; failedAt: string }[] };
    const failedJob = async () =>
      (JSON.parse((await cli.exec(['failed', 'researcher', '--json'], { env })).stdout) as Page).jobs.find(
        (j) => j.jobId === jobId,
      );
    const before = await failedJob();
    expect(before).toMatchObject({ attemptsMade: 1 });

    // The role/JOB form, as the failed list is pasted.
    const retried = await cli.exec(['retry', `researcher/${jobId}`], { env });
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain(`${jobId} is waiting in the researcher queue again`);
    // It ran again (and, its input being no better, failed again): a later failure, its attempts
    // reset by the retry and spent once more.
    const after = await waitFor(
      async () => {
        const job = await failedJob();
        return job && job.failedAt !== before?.failedAt ? job : undefined;
      },
      { what: 'the retried job to have run again' },
    );
    expect(Date.parse(after.failedAt)).toBeGreaterThan(Date.parse(before?.failedAt ?? ''));
    expect(after.attemptsMade).toBe(1);
    // A job that is not failed cannot be retried: the API's reason, exit 1, no stack trace.
    const bogus = await cli.exec(['retry', 'researcher', 'no-such-job'], { env });
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toContain('no job no-such-job in the researcher queue');
    expect(bogus.stderr).not.toMatch(STACK_TRACE);
  });

  it('kill-switch on --tool: a real call of that tool is refused (stop reason kill_switch); off restores it', async () => {
    const on = await cli.exec(['kill-switch', 'on', '--tool', 'http.get', '--reason', 'incident 7: bad pages'], {
      tty: true,
      env,
    });
    expect(on.code).toBe(0);
    expect(screen(on.stdout).join('\n')).toMatch(/tools\s+http\.get/);
    const read = JSON.parse((await cli.exec(['kill-switch', '--json'], { env })).stdout);
    expect(read).toMatchObject({ global: false, noWrites: false, tools: ['http.get'] });
    expect(read.lastChange).toMatchObject({ reason: 'incident 7: bad pages' });

    const stopped = await cli.exec(['submit', `fetch ${site.base}/while-off`, '--watch', '--json'], { env });
    const view = JSON.parse(stopped.stdout) as TaskView;
    expect(view.subtasks[0]?.stopReason).toBe('kill_switch');
    expect(site.hits).not.toContain('/while-off');

    // Switching it on again changes nothing and says so (no audit record for a no-op).
    const again = await cli.exec(['kill-switch', 'on', '--tool', 'http.get', '--reason', 'again'], { env });
    expect(again.stdout).toContain('http.get already switched off; nothing changed');

    const off = await cli.exec(['kill-switch', 'off', '--tool', 'http.get', '--reason', 'incident 7 over'], { env });
    expect(off.code).toBe(0);
    expect(off.stdout).toMatch(/tools\s+none switched off/);
    const restored = await cli.exec(['submit', `fetch ${site.base}/after-off`, '--watch', '--json'], { env });
    expect(restored.code).toBe(0);
    expect((JSON.parse(restored.stdout) as TaskView).subtasks[0]?.stopReason).toBe('finish');
    expect(site.hits).toContain('/after-off');
  });

  it('kill-switch without --reason is a usage mistake (exit 2) and changes nothing', async () => {
    const missing = await cli.exec(['kill-switch', 'on', '--writes'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('kill-switch on needs --reason');
    expect(missing.stderr).toContain('flotilla --help');
    const both = await cli.exec(['kill-switch', 'on', '--writes', '--tool', 'x', '--reason', 'r'], { env });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--tool or --writes, not both');
    expect(JSON.parse((await cli.exec(['kill-switch', '--json'], { env })).stdout).noWrites).toBe(false);
  });

  it('--help lists every command, grouped; an unknown command is a usage mistake', async () => {
    const help = await cli.exec(['--help']);
    expect(help.code).toBe(0);
    const headings = ['tasks (', 'operator (', 'approvals (', 'keys (', 'dev ('].map((h) =>
      help.stdout.indexOf(`\n${h}`),
    );
    expect(headings.every((at) => at > 0)).toBe(true);
    expect([...headings].sort((a, b) => a - b)).toEqual(headings);
    for (const command of [
      'submit',
      'tasks',
      'status',
      'cancel',
      'roles',
      'queues',
      'failed',
      'retry',
      'kill-switch',
      'approvals',
      'approve',
      'deny',
      'keys add',
      'demo',
      'dev',
      'new-worker',
    ])
      expect(help.stdout, command).toMatch(new RegExp(`^ {2}${command}\\b`, 'm'));
    const unknown = await cli.exec(['rol']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no command "rol"');
  });

  it('a wrong FLOTILLA_URL: the URL and how to start the stack, exit 1, nothing on stdout', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    for (const args of [['roles'], ['queues', '--json'], ['kill-switch']]) {
      const failed = await cli.exec(args, { env: { FLOTILLA_URL: url } });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain(`cannot reach the flotilla API at ${url}`);
      expect(failed.stderr).toContain('docker compose up');
      expect(failed.stderr).toContain('pnpm dev');
      expect(failed.stderr).not.toMatch(STACK_TRACE);
      expect(failed.stdout).toBe('');
    }
  });
});

describe('flotilla operator commands need an admin key', () => {
  let url: string;
  let orchestrator: Awaited<ReturnType<typeof startKeyedOrchestrator>> | undefined;
  let tasksKey: string;
  let adminKey: string;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'flotilla-cli-ops-auth-'));
    const keysFile = join(cwd, 'api_keys');
    tasksKey = (await cli.exec(['keys', 'add', 'me', '--file', keysFile])).stdout.trim();
    adminKey = (await cli.exec(['keys', 'add', 'ops', '--admin', '--file', keysFile])).stdout.trim();
    orchestrator = await startKeyedOrchestrator(keysFile);
    url = orchestrator.url;
  }, 60_000);

  afterAll(async () => {
    await orchestrator?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('a tasks key on an operator command: says an admin key is needed and how to make one', async () => {
    writeFileSync(join(cwd, 'me.key'), tasksKey);
    for (const args of [
      ['queues'],
      ['kill-switch', 'on', '--reason', 'x'],
      ['approvals'],
      ['approve', 'apr-1', '--reason', 'ok'],
    ]) {
      const refused = await cli.exec(args, { env: { FLOTILLA_URL: url, FLOTILLA_API_KEY_FILE: 'me.key' } });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('operator commands need an admin key (403');
      expect(refused.stderr).toContain('keys add NAME --admin');
      expect(refused.stderr).not.toContain(tasksKey);
      expect(refused.stderr).not.toMatch(STACK_TRACE);
    }
    // The switch did not move under the refused key.
    const read = await cli.exec(['kill-switch', '--json'], { env: { FLOTILLA_URL: url, FLOTILLA_API_KEY: adminKey } });
    expect(JSON.parse(read.stdout).global).toBe(false);
  });

  it('an admin key: the change is recorded with the key’s name as who made it', async () => {
    const env = { FLOTILLA_URL: url, FLOTILLA_API_KEY: adminKey };
    const on = await cli.exec(['kill-switch', 'on', '--writes', '--reason', 'freeze for the migration'], { env });
    expect(on.code).toBe(0);
    expect(on.stdout).toMatch(/writes\s+ON/);
    expect(on.stdout).toContain('by ops: freeze for the migration');
    const read = JSON.parse((await cli.exec(['kill-switch', '--json'], { env })).stdout);
    expect(read).toMatchObject({ noWrites: true, global: false, lastChange: { by: 'ops' } });
    const off = await cli.exec(['kill-switch', 'off', '--writes', '--reason', 'migration done'], { env });
    expect(off.code).toBe(0);
    expect(JSON.parse((await cli.exec(['kill-switch', '--json'], { env })).stdout).noWrites).toBe(false);
  });
});
