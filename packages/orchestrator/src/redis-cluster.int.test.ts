// A whole task on a real Redis Cluster (three masters on loopback, an ACL user, the default user off):
// the orchestrator, a researcher and the dashboard as processes with REDIS_CLUSTER_NODES, so the services' own
// connection factory, BullMQ's flows across two queues, flotilla's Lua scripts, pub/sub and the
// fan-in all run against slot routing, where a key outside the prefix's slot fails with CROSSSLOT.
// Runs the built dist/ (pnpm build first). Needs redis-server and redis-cli; fails without them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisKeys, type TaskView } from '@flotilla/contracts';
import { formatApiKeyLine, generateApiKey } from '@flotilla/runtime/auth';
import {
  freePort,
  type RedisCluster,
  type RunningProcess,
  startProcess,
  startRedisCluster,
  stopAll,
  uniquePrefix,
  waitFor,
} from '@flotilla/test-utils';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packages = fileURLToPath(new URL('../../', import.meta.url));
const user = { name: 'flotilla', password: 'cluster-test-password-4b1d3e' };

let cluster: RedisCluster;
let dir: string;
const procs: RunningProcess[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ user });
  dir = mkdtempSync(join(tmpdir(), 'flotilla-cluster-test-'));
  writeFileSync(join(dir, 'redis_password'), user.password, { mode: 0o600 });
});

afterAll(async () => {
  await stopAll(procs);
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A service's real entry point on the cluster; only the settings named here decide what it does. */
function start(
  pkg: 'orchestrator' | 'researcher' | 'dashboard',
  env: Record<string, string | undefined>,
): RunningProcess {
  const proc = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
    cwd: join(packages, pkg),
    env: {
      LLM_PROVIDER: 'offline',
      REDIS_URL: undefined,
      REDIS_URL_FILE: undefined,
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_USERNAME: user.name,
      REDIS_PASSWORD_FILE: join(dir, 'redis_password'),
      CHROMA_URL: undefined,
      OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
      API_KEYS_FILE: undefined,
      HEALTH_HOST: '127.0.0.1',
      HEALTH_PORT: '0',
      SHUTDOWN_GRACE_MS: '3000',
      ...env,
    },
  });
  procs.push(proc);
  return proc;
}

describe('REDIS_CLUSTER_NODES', () => {
  it('refuses a prefix without a hash tag (and a REDIS_URL beside the nodes) with exit 78, before connecting', async () => {
    const orchestrator = start('orchestrator', { AUTH: 'off', QUEUE_PREFIX: 'flotilla-untagged' });
    const researcher = start('researcher', { QUEUE_PREFIX: 'flotilla-untagged' });
    const both = start('researcher', { QUEUE_PREFIX: '{flotilla-ok}', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(await orchestrator.exited).toBe(78);
    expect(orchestrator.stderr()).toMatch(/^config error: QUEUE_PREFIX: "flotilla-untagged" has no hash tag/m);
    expect(await researcher.exited).toBe(78);
    expect(researcher.stderr()).toMatch(/^config error: QUEUE_PREFIX: .*use e\.g\. \{flotilla-untagged\}/m);
    expect(await both.exited).toBe(78);
    expect(both.stderr()).toMatch(/^config error: REDIS_URL: is set, and so is REDIS_CLUSTER_NODES/m);
    for (const p of [orchestrator, researcher, both]) {
      expect(p.stderr()).not.toContain('    at ');
      expect(p.stdout() + p.stderr()).not.toContain(user.password);
    }
  });

  it('runs a task through plan, a researcher subtask and fan-in on a three-master cluster, as an ACL user; the dashboard shows it', async () => {
    const prefix = `{${uniquePrefix('flotilla-test')}}`;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const orchestrator = start('orchestrator', { AUTH: 'off', QUEUE_PREFIX: prefix, PORT: String(port) });
    const researcher = start('researcher', { QUEUE_PREFIX: prefix });
    const alive = () => {
      for (const p of [orchestrator, researcher])
        if (p.child.exitCode !== null) throw new Error(`a service exited: ${p.stderr().slice(-2000)}`);
    };
    await waitFor(
      async () => {
        alive();
        const res = await fetch(`${url}/v1/roles`).catch(() => undefined);
        if (!res?.ok) return false;
        const { roles } = (await res.json()) as { roles: { role: string }[] };
        return roles.some((r) => r.role === 'researcher');
      },
      { what: 'the orchestrator to list the researcher', timeoutMs: 30_000 },
    );

    const res = await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ goal: 'look up the tide tables for the harbour' }),
    });
    expect(res.status).toBe(202);
    const { taskId } = (await res.json()) as { taskId: string };
    const view = await waitFor(
      async () => {
        alive();
        const v = (await (await fetch(`${url}/v1/tasks/${taskId}`)).json()) as TaskView;
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
      },
      { what: `task ${taskId} to end`, timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(view.error).toBeUndefined();
    expect(view.status).toBe('completed');
    expect(view.subtasks.length).toBeGreaterThanOrEqual(1);
    expect(view.subtasks.every((s) => s.role === 'researcher' && s.state === 'completed')).toBe(true);
    expect(view.answer).toBeTruthy();

    // It really ran on the cluster: every key of the deployment is on the one master that owns the
    // prefix's slot, and the other masters hold none of them.
    const client = new Cluster(
      cluster.ports.map((p) => ({ host: '127.0.0.1', port: p })),
      { redisOptions: { username: user.name, password: user.password } },
    );
    try {
      expect(await client.exists(redisKeys(prefix).task(taskId))).toBe(1);
      const perNode = await Promise.all(client.nodes('master').map((n) => n.keys(`${prefix}:*`)));
      const holding = perNode.filter((keys) => keys.length > 0);
      expect(holding).toHaveLength(1);
      expect(holding[0]).toContain(`${prefix}:role.researcher:meta`);
      expect(holding[0]).toContain(`${prefix}:orchestrator.aggregate:meta`);
    } finally {
      client.disconnect();
    }

    // The dashboard reads the same queues through bull-board's Lua getters, on the cluster too.
    const token = generateApiKey();
    writeFileSync(join(dir, 'api_keys'), `${formatApiKeyLine('ops', 'admin', token)}\n`);
    const dashboardPort = await freePort();
    const dashboard = start('dashboard', {
      QUEUE_PREFIX: prefix,
      HEALTH_PORT: String(dashboardPort),
      API_KEYS_FILE: join(dir, 'api_keys'),
    });
    const queues = await waitFor(
      async () => {
        if (dashboard.child.exitCode !== null)
          throw new Error(`the dashboard exited: ${dashboard.stderr().slice(-2000)}`);
        const r = await fetch(`http://127.0.0.1:${dashboardPort}/api/queues`, {
          headers: { authorization: `Bearer ${token}` },
        }).catch(() => undefined);
        return r?.ok ? ((await r.json()) as { queues: { name: string; counts: Record<string, number> }[] }) : undefined;
      },
      { what: 'the dashboard to serve its queues', timeoutMs: 30_000 },
    );
    expect(queues.queues.find((q) => q.name === 'role.researcher')?.counts.completed).toBeGreaterThanOrEqual(1);
    for (const p of [orchestrator, researcher, dashboard])
      expect(p.stdout() + p.stderr()).not.toMatch(/CROSSSLOT|MOVED|redis connection error/);
  });
});
