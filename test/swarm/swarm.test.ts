// The stack on a real single-node swarm (issue 15 §1): deployed with `docker stack deploy` from the
// locally built images, scaled with `docker service scale`, and rolled out with an image whose
// healthcheck fails, which Swarm must roll back by itself without losing a task. Real engine, real
// overlay networks, real tasks through the API; the only "outside" is the page server the test
// deploys on the internal backend network.

import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { docker, must, waitFor } from '../stack/docker.js';
import { RESEARCHERS, SITE_SERVICE, stack } from './setup.js';

const baseUrl = () => process.env.SWARM_BASE_URL as string;
const testKey = () => process.env.SWARM_API_KEY as string;
const loadKey = () => process.env.SWARM_LOAD_API_KEY as string;
const stableImage = () => `flotilla/researcher:${process.env.FLOTILLA_VERSION}`;
const badImage = () => `flotilla/researcher:${process.env.FLOTILLA_VERSION}-unhealthy`;
const researcherService = `${stack}_researcher`;
const SITE_URL = `http://${SITE_SERVICE}:8080`;
const OUTSIDE_SERVICE = 'swarm-outside';
const OUTSIDE_PORT = 7777;
/** The outside listener's address on the egress network (set once it runs). */
let outsideIp = '';
const proxyAllow = () => `EGRESS_ALLOW_RESEARCHER=${outsideIp}:${OUTSIDE_PORT}`;

/** What a page server (test/stack/site.mjs) logged, one event per JSON line. */
async function siteEvents(
  service: string,
): Promise<Array<{ event: string; path?: string; group?: string; from?: string | string[] }>> {
  const out = await must(docker(['service', 'logs', '--raw', `${stack}_${service}`]));
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

type Subtask = { role: string; state: string; replica?: string };
type TaskView = { taskId: string; status: string; subtasks: Subtask[] };

async function submit(goal: string, apiKey = testKey): Promise<string> {
  const res = await fetch(`${baseUrl()}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ goal }),
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { taskId: string }).taskId;
}

async function view(taskId: string, apiKey = testKey): Promise<TaskView> {
  const res = await fetch(`${baseUrl()}/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${apiKey()}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as TaskView;
}

const finished = (taskId: string, apiKey = testKey, timeoutMs = 180_000) =>
  waitFor(
    `task ${taskId} to finish`,
    async () => {
      const v = await view(taskId, apiKey);
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
    },
    timeoutMs,
    1000,
  );

type Container = {
  Id: string;
  Config: { Hostname: string; User: string; Image: string; Env: string[]; Labels: Record<string, string> };
  State: { Running: boolean; Health?: { Status: string } };
  HostConfig: {
    ReadonlyRootfs: boolean;
    CapDrop: string[] | null;
    Memory: number;
    NanoCpus: number;
    PidsLimit: number | null;
    Init: boolean | null;
  };
  Mounts: Array<{ Type: string; Destination: string }>;
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
};

/** Running containers of one service of the stack. */
async function containers(service: string): Promise<Container[]> {
  const ids = (await must(docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${stack}_${service}`])))
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  return JSON.parse(await must(docker(['inspect', ...ids]))) as Container[];
}

type ServiceSpec = {
  Spec: {
    Mode?: { Replicated?: { Replicas: number } };
    TaskTemplate: {
      Resources?: { Limits?: { MemoryBytes?: number } };
      ContainerSpec: { Image: string; Secrets?: Array<{ SecretName: string; File: { Name: string } }> };
    };
  };
  UpdateStatus?: { State: string; Message?: string };
};
const inspectService = async (name: string) =>
  (JSON.parse(await must(docker(['service', 'inspect', name]))) as ServiceSpec[])[0] as ServiceSpec;

/** An image reference without the digest Swarm pins it with (`name:tag@sha256:...`). */
const untagged = (image: string) => image.replace(/@sha256:[0-9a-f]+$/, '');

/** Replicas are named `<hostname>-<pid>` by the runtime; a Swarm container's hostname is its short id. */
const hostOf = (replica: string | undefined) => replica?.replace(/-\d+$/, '');

/** A release that never turns healthy: it starts, but its health server never answers. */
function buildUnhealthy(): Promise<void> {
  const dockerfile = `FROM ${stableImage()}\nCMD ["/nodejs/bin/node", "-e", "setInterval(() => {}, 1 << 30)"]\n`;
  return new Promise((resolve, reject) => {
    // The classic builder takes FROM from the local engine, where BuildKit may ask a registry first.
    const env = { ...process.env, DOCKER_BUILDKIT: '0' };
    const child = execFile('docker', ['build', '-q', '-t', badImage(), '-'], { timeout: 300_000, env }, (err, _o, e) =>
      err ? reject(new Error(`docker build: ${e || err.message}`)) : resolve(),
    );
    child.stdin?.end(dockerfile);
  });
}

describe('the flotilla stack on Docker Swarm', () => {
  it('runs every service with its tasks healthy, on overlay networks, internal where Compose has internal', async () => {
    const names = (await must(docker(['stack', 'services', stack, '--format', '{{.Name}}']))).split('\n');
    for (const s of ['orchestrator', 'researcher', 'coder', 'sandbox', 'egress-proxy', 'redis', 'chroma-gate']) {
      expect(names).toContain(`${stack}_${s}`);
    }
    const [orchestrator] = await containers('orchestrator');
    expect(orchestrator?.State.Health?.Status).toBe('healthy');
    const nets = JSON.parse(
      await must(docker(['network', 'inspect', ...['backend', 'sandbox', 'egress'].map((n) => `${stack}_${n}`)])),
    ) as Array<{ Name: string; Driver: string; Internal: boolean; Scope: string }>;
    expect(nets.map((n) => [n.Name.replace(`${stack}_`, ''), n.Driver, n.Scope, n.Internal])).toEqual([
      ['backend', 'overlay', 'swarm', true],
      ['sandbox', 'overlay', 'swarm', true],
      ['egress', 'overlay', 'swarm', false],
    ]);
  });

  it('applies the hardening and limits Swarm can enforce, and secrets as files', async () => {
    for (const service of ['orchestrator', 'coder', 'egress-proxy']) {
      const [c] = await containers(service);
      expect(c, service).toBeDefined();
      if (!c) continue;
      expect(Number(c.Config.User.split(':')[0]), service).toBeGreaterThan(0);
      expect(c.HostConfig.ReadonlyRootfs, service).toBe(true);
      expect(c.HostConfig.CapDrop, service).toContain('ALL');
      expect(c.HostConfig.Init, service).toBe(true);
      expect(c.HostConfig.PidsLimit, service).toBe(256);
      expect(c.HostConfig.NanoCpus, service).toBe(1e9);
      expect(
        c.Mounts.some((m) => m.Type === 'tmpfs' && m.Destination === '/tmp'),
        service,
      ).toBe(true);
    }
    expect((await containers('orchestrator'))[0]?.HostConfig.Memory).toBe(512 * 1024 ** 2);
    // The sandbox is off in Swarm (compose.swarm.yaml says why), its limits still in its spec.
    const sandbox = await inspectService(`${stack}_sandbox`);
    expect(sandbox.Spec.Mode?.Replicated?.Replicas).toBe(0);
    expect(sandbox.Spec.TaskTemplate.Resources?.Limits?.MemoryBytes).toBe(1024 ** 3);
    const secrets = (await inspectService(`${stack}_orchestrator`)).Spec.TaskTemplate.ContainerSpec.Secrets ?? [];
    expect(secrets.map((s) => s.File.Name).sort()).toEqual(
      ['api_keys', 'chroma_token', 'llm_api_key', 'redis_orchestrator'].sort(),
    );
  });

  it(`scales the researcher to ${RESEARCHERS} with docker service scale; one task fans out over all of them`, async () => {
    // http.get fetches a private address only when the address itself is listed: the site's, now
    // that it runs (the researchers start at 0 replicas for this, test/swarm/compose.test.yaml), and
    // the outside listener's, which the egress proxy must allow the researchers too.
    const [site] = await containers(SITE_SERVICE);
    const siteIp = site?.NetworkSettings.Networks[`${stack}_backend`]?.IPAddress;
    expect(siteIp).toBeTruthy();
    const [outside] = await containers(OUTSIDE_SERVICE);
    outsideIp = outside?.NetworkSettings.Networks[`${stack}_egress`]?.IPAddress ?? '';
    expect(outsideIp).toBeTruthy();
    const update = (service: string, env: string) =>
      must(docker(['service', 'update', '--detach', '--no-resolve-image', '--env-add', env, `${stack}_${service}`]));
    await update('egress-proxy', proxyAllow());
    await update('researcher', `HTTP_ALLOWLIST=${SITE_SERVICE}:8080,${siteIp}:8080,${outsideIp}:${OUTSIDE_PORT}`);
    await must(docker(['service', 'scale', `${researcherService}=${RESEARCHERS}`], { timeoutMs: 300_000 }));
    const researchers = await waitFor(
      `${RESEARCHERS} researchers running and healthy`,
      async () => {
        const all = await containers('researcher');
        return all.length === RESEARCHERS && all.every((c) => c.State.Health?.Status === 'healthy') && all;
      },
      240_000,
      2000,
    );

    // One clause per replica, each fetching a barrier page that answers only when RESEARCHERS requests
    // from distinct addresses are open together; with one job per replica at a time, the task can only
    // complete if every replica holds one of its subtasks at the same moment.
    const group = `fanout-${randomUUID().slice(0, 8)}`;
    const clauses = Array.from(
      { length: RESEARCHERS },
      (_, i) => `fetch ${SITE_URL}/barrier?group=${group}&n=${RESEARCHERS}&i=${i}`,
    );
    const v = await finished(await submit(clauses.join('; ')));
    expect(v.status).toBe('completed');
    const subtasks = v.subtasks.filter((s) => s.role === 'researcher');
    expect(subtasks).toHaveLength(RESEARCHERS);
    const events = (await siteEvents(SITE_SERVICE)).filter((e) => e.group === group);
    expect(events.filter((e) => e.event === 'timeout')).toEqual([]);
    const release = events.find((e) => e.event === 'release');
    expect(new Set(release?.from as string[])).toEqual(
      new Set(researchers.map((c) => c.NetworkSettings.Networks[`${stack}_backend`]?.IPAddress)),
    );
    // The task view agrees: each subtask names the replica that ran it, one per container.
    expect(new Set(subtasks.map((s) => hostOf(s.replica)))).toEqual(new Set(researchers.map((c) => c.Config.Hostname)));
  });

  it('lets a researcher out only through the egress proxy, which knows it by its Swarm task name', async () => {
    // The proxy's update (the researchers' allowlist, set with the scale) is done: one task, healthy.
    await waitFor(
      'the egress proxy on its new allowlist',
      async () => {
        const all = await containers('egress-proxy');
        return (
          all.length === 1 && all[0]?.State.Health?.Status === 'healthy' && all[0].Config.Env.includes(proxyAllow())
        );
      },
      180_000,
      2000,
    );
    const marker = `outside-${randomUUID().slice(0, 8)}`;
    const v = await finished(await submit(`fetch http://${outsideIp}:${OUTSIDE_PORT}/slow?ms=10&i=${marker}`));
    expect(v.status).toBe('completed');
    const [proxy] = await containers('egress-proxy');
    const proxyIp = proxy?.NetworkSettings.Networks[`${stack}_egress`]?.IPAddress;
    const answered = (await siteEvents(OUTSIDE_SERVICE)).filter(
      (e) => e.event === 'answered' && e.path?.includes(marker),
    );
    // The listener saw the request come from the proxy, not from a researcher (which has no route there).
    expect(answered.map((e) => e.from)).toEqual([proxyIp]);
    // squid's allowlist for the researcher matched the Swarm task name its DNS gave the caller.
    const line = await waitFor(
      'the proxy to log the tunnel',
      async () => {
        const log = await must(docker(['service', 'logs', '--raw', `${stack}_egress-proxy`]));
        return log
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { service: string; client_name: string; host: string; result: string })
          .find((l) => l.host === outsideIp && l.result === 'TCP_TUNNEL');
      },
      60_000,
      1000,
    );
    expect(line.service).toBe('researcher');
    expect(line.client_name).toMatch(new RegExp(`^${stack}_researcher\\.\\d+\\.[0-9a-z]+\\.`));
  });

  it('rolls back an image whose healthcheck fails by itself, and loses no task submitted meanwhile', async () => {
    await buildUnhealthy();
    const before = await inspectService(researcherService);
    expect(untagged(before.Spec.TaskTemplate.ContainerSpec.Image)).toBe(stableImage());

    // A stream of tasks through the whole update and rollback.
    const submitted: string[] = [];
    let streaming = true;
    const stream = (async () => {
      for (let i = 0; streaming; i++) {
        submitted.push(await submit(`fetch ${SITE_URL}/slow?ms=200&i=rollout-${i}`, loadKey));
        await new Promise((r) => setTimeout(r, 3000));
      }
    })();

    const started = Date.now();
    let rollbackS = 0;
    /** Each UpdateStatus Swarm reported on the way, e.g. why it started the rollback. */
    const states: string[] = [];
    try {
      await must(
        docker(['service', 'update', '--detach', '--no-resolve-image', '--image', badImage(), researcherService]),
      );
      const rolledBack = await waitFor(
        'Swarm to roll the researcher back',
        async () => {
          const s = await inspectService(researcherService);
          const seen = `${s.UpdateStatus?.State}: ${s.UpdateStatus?.Message}`;
          if (!states.includes(seen)) states.push(seen);
          return s.UpdateStatus?.State === 'rollback_completed' && s;
        },
        420_000,
        3000,
      );
      rollbackS = Math.round((Date.now() - started) / 1000);
      expect(rolledBack.UpdateStatus?.Message ?? '').toMatch(/rollback/i);
    } finally {
      streaming = false;
      await stream;
    }

    // The bad image did run (a task of it was started and failed), so the rollback had a cause.
    const history = await must(
      docker([
        'service',
        'ps',
        researcherService,
        '--no-trunc',
        '--format',
        '{{.Image}}\t{{.DesiredState}}\t{{.Error}}',
      ]),
    );
    const badTasks = history.split('\n').filter((l) => l.startsWith(badImage()));
    expect(badTasks.length, history).toBeGreaterThan(0);
    expect(
      badTasks.every((l) => l.split('\t')[1] === 'Shutdown'),
      history,
    ).toBe(true);

    // The service is back on the stable image, every running task too.
    expect(untagged((await inspectService(researcherService)).Spec.TaskTemplate.ContainerSpec.Image)).toBe(
      stableImage(),
    );
    const running = await waitFor(
      `${RESEARCHERS} researchers on the stable image`,
      async () => {
        const all = await containers('researcher');
        return all.length === RESEARCHERS && all.every((c) => c.State.Health?.Status === 'healthy') && all;
      },
      180_000,
      2000,
    );
    expect(new Set(running.map((c) => untagged(c.Config.Image)))).toEqual(new Set([stableImage()]));

    // No task lost: every one submitted during the update and the rollback completed.
    expect(submitted.length).toBeGreaterThan(5);
    const views: TaskView[] = [];
    for (const id of submitted) views.push(await finished(id, loadKey));
    expect(views.filter((v) => v.status !== 'completed').map((v) => [v.taskId, v.status])).toEqual([]);
    // The figures docs/swarm.md quotes.
    console.info(
      `swarm rollback: rollback_completed ${rollbackS} s after the update; ${submitted.length} tasks submitted ` +
        `meanwhile, all completed; update states: ${states.join(' -> ')}`,
    );
  });
});
