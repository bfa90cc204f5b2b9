// Needs the real thing: a Docker engine, the built images and the whole Compose stack (setup.ts brings it
// up with --scale researcher=3). Run with `bash scripts/test-stack`.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ContainerInfo,
  compose,
  containers,
  docker,
  ipOn,
  isReady,
  must,
  project,
  sandboxRun,
  serviceOf,
  waitFor,
} from './docker.js';
import { rolloutTests } from './rollout.js';
import { sandboxEscapeTests } from './sandbox-escapes.js';
import { CREDENTIALS, OUTSIDE_PORT, OUTSIDE_SERVICE, RESEARCHERS, SITE_SERVICE, SITE_URL } from './setup.js';

const FLOTILLA = ['orchestrator', 'researcher', 'coder', 'sandbox'];
const baseUrl = () => process.env.STACK_BASE_URL as string;
/** Tenant stack-a's key: the client of every task below. */
const token = () => process.env.STACK_API_KEY as string;
const credential = (name: string) => process.env[`STACK_${name.toUpperCase()}`] as string;
const canaries = () => [
  process.env.STACK_API_KEY as string,
  process.env.STACK_OTHER_API_KEY as string,
  process.env.STACK_ADMIN_API_KEY as string,
  process.env.STACK_LLM_KEY as string,
  process.env.STACK_SANDBOX_TOKEN as string,
  ...CREDENTIALS.map(credential),
];

/**
 * A script for `node -e` that speaks RESP to redis:6379: optionally AUTH as a user whose password is in
 * /run/secrets/<secret>, then each command; prints one JSON array of the replies (errors as "ERR: ...").
 * Only for commands with one-line replies (status, error, integer): the images have no redis client.
 */
const redisScript = (commands: string[][], login?: { user: string; secret: string }) => {
  const cmds = [...(login ? [['AUTH', login.user, `@@${login.secret}`]] : []), ...commands];
  return `const fs=require('fs'),s=require('net').connect(6379,'redis');
const cmds=${JSON.stringify(cmds)}.map(c=>c.map(a=>a.startsWith('@@')?fs.readFileSync('/run/secrets/'+a.slice(2),'utf8').trim():a));
s.write(cmds.map(c=>'*'+c.length+'\\r\\n'+c.map(a=>'$'+Buffer.byteLength(a)+'\\r\\n'+a+'\\r\\n').join('')).join(''));
let buf='';s.on('data',d=>{buf+=d;const lines=buf.split('\\r\\n').filter(l=>/^[-+:$*]/.test(l));
if(lines.length>=cmds.length){console.log(JSON.stringify(lines.slice(0,cmds.length).map(l=>l[0]==='-'?'ERR: '+l.slice(1):l.slice(1))));process.exit(0)}});
setTimeout(()=>{console.log(JSON.stringify(buf));process.exit(2)},5000);`;
};

type Subtask = { subtaskId: string; role: string; state: string; replica?: string; stopReason?: string };
type TaskView = { taskId: string; status: string; subtasks: Subtask[]; traceId?: string; answer?: string };

async function submit(goal: string): Promise<string> {
  const res = await fetch(`${baseUrl()}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ goal }),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return ((await res.json()) as { taskId: string }).taskId;
}

async function view(taskId: string): Promise<TaskView> {
  const res = await fetch(`${baseUrl()}/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${token()}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as TaskView;
}

const finished = async (taskId: string, timeoutMs = 180_000) =>
  waitFor(
    `task ${taskId} to finish`,
    async () => {
      const v = await view(taskId);
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
    },
    timeoutMs,
    500,
  );

/** Replicas are named `<hostname>-<pid>` by the runtime; the hostname is the container's. */
const hostOf = (replica: string | undefined) => replica?.replace(/-\d+$/, '');

/** A container's address on the backend network: what the site sees as a request's source. */
const backendIp = (c: ContainerInfo) => ipOn(c, 'backend');

/** What the page server (site.mjs) logged, one event per JSON line. */
type SiteEvent = { event: string; path?: string; from?: string | string[]; group?: string };
async function siteEvents(): Promise<SiteEvent[]> {
  const [site] = await containers(SITE_SERVICE);
  if (!site) throw new Error(`no ${SITE_SERVICE} container`);
  return (await must(docker(['logs', site.Id])))
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as SiteEvent);
}
const about = (events: SiteEvent[], marker: string) =>
  events.filter((e) => e.group === marker || e.path?.includes(marker));

describe('the flotilla stack', () => {
  let all: ContainerInfo[] = [];
  beforeAll(async () => {
    all = await containers();
  });

  it(`runs ${RESEARCHERS} healthy researcher containers`, async () => {
    const researchers = all.filter((c) => serviceOf(c) === 'researcher');
    expect(researchers).toHaveLength(RESEARCHERS);
    for (const c of researchers) expect(c.State.Health?.Status, c.Name).toBe('healthy');
  });

  it('hardens every flotilla container: non-root, read-only, no capabilities, no-new-privileges, limits', () => {
    const flotilla = all.filter((c) => FLOTILLA.includes(serviceOf(c)));
    expect(flotilla.length).toBe(RESEARCHERS + 3);
    for (const c of flotilla) {
      const h = c.HostConfig;
      const uid = c.Config.User.split(':')[0];
      expect(uid, c.Name).toMatch(/^\d+$/);
      expect(Number(uid), c.Name).toBeGreaterThan(0);
      expect(h.ReadonlyRootfs, c.Name).toBe(true);
      expect(h.CapDrop, c.Name).toContain('ALL');
      expect(h.SecurityOpt ?? [], c.Name).toEqual(
        expect.arrayContaining([expect.stringMatching(/^no-new-privileges/)]),
      );
      expect(h.Memory, c.Name).toBeGreaterThan(0);
      expect(h.NanoCpus, c.Name).toBeGreaterThan(0);
      expect(h.PidsLimit ?? 0, c.Name).toBeGreaterThan(0);
      expect(h.Init, c.Name).toBe(true);
      expect(h.RestartPolicy.Name, c.Name).toMatch(/always|unless-stopped|on-failure/);
    }
  });

  describe('the sandbox', () => {
    const sandbox = async () => {
      const [c] = await containers('sandbox');
      expect(c, 'a sandbox container').toBeDefined();
      return c as ContainerInfo;
    };

    it('is healthy, non-root, read-only, without capabilities, under its own seccomp profile', async () => {
      const c = await sandbox();
      expect(c.State.Health?.Status).toBe('healthy');
      expect(c.Config.User).toBe('65532:65532');
      expect(c.HostConfig.ReadonlyRootfs).toBe(true);
      expect(c.HostConfig.CapDrop).toContain('ALL');
      const opts = c.HostConfig.SecurityOpt ?? [];
      expect(opts).toEqual(expect.arrayContaining([expect.stringMatching(/^no-new-privileges/)]));
      // Compose sends the profile's content, not its path: our deny list is in it.
      const seccomp = opts.find((o) => /^seccomp[=:]/.test(o)) ?? '';
      expect(seccomp).toMatch(/"ptrace"/);
      expect(seccomp).not.toMatch(/unconfined/);
    });

    it('joins only the sandbox network', async () => {
      expect(Object.keys((await sandbox()).NetworkSettings.Networks)).toEqual([`${project}_sandbox`]);
    });

    it("runs a coder subtask's code: the subtask finishes and the run's output is in the task view", async () => {
      // A code word (compute) sends the clause to the coder; the offline model's code.run call is a
      // javascript program printing the clause, so the marker comes back only if the sandbox ran it.
      const marker = `sandbox-${randomUUID().slice(0, 8)}`;
      const v = await finished(await submit(`compute ${marker}`));
      const coder = v.subtasks.filter((s) => s.role === 'coder');
      expect(coder, JSON.stringify(v)).toHaveLength(1);
      expect(coder[0]?.state, JSON.stringify(v)).toBe('completed');
      expect(coder[0]?.stopReason, JSON.stringify(v)).toBe('finish');
      expect(v.status, JSON.stringify(v)).toBe('completed');
      // The run's result (as the sandbox answered it) reaches the answer through the coder's output.
      expect(v.answer, JSON.stringify(v)).toContain(`"run":{"stdout":"compute ${marker}\\n"`);
      expect(v.answer, JSON.stringify(v)).toContain('"exitCode":0,"timedOut":false');
    });

    it('a run cannot reach redis, by name or by address; the coder can (control)', async () => {
      const c = await sandbox();
      // By address too: a name that does not resolve on the sandbox network proves little on its own.
      const redisIp = backendIp((await containers('redis'))[0] as ContainerInfo);
      expect(redisIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const dial = (host: string) =>
        `const s=require('net').connect(6379,'${host}');s.on('connect',()=>{console.log('connected');process.exit(0)});` +
        "s.on('error',e=>{console.log(e.code);process.exit(1)});setTimeout(()=>{console.log('timeout');process.exit(2)},3000)";
      const [coder] = await containers('coder');
      const control = await docker([
        'exec',
        (coder as ContainerInfo).Id,
        '/nodejs/bin/node',
        '-e',
        dial(redisIp as string),
      ]);
      expect(control.stdout, 'the coder reaches redis (control)').toMatch(/connected/);
      for (const host of ['redis', redisIp as string]) {
        const direct = await docker(['exec', c.Id, '/usr/local/bin/node', '-e', dial(host)]);
        expect(direct.stdout, `the sandbox container dialling ${host}`).not.toMatch(/connected/);
        expect(direct.code).not.toBe(0);
      }
      // Through the API, as a run: the same dials in python, from inside the run's own namespaces.
      const code =
        'import socket\n' +
        `for host in ("redis", "${redisIp}"):\n` +
        '    try:\n        socket.create_connection((host, 6379), timeout=2)\n        print(host, "connected")\n' +
        '    except OSError as e:\n        print(host, "failed", type(e).__name__)\n';
      const result = await sandboxRun(c.Id, { language: 'python', code });
      expect(result.exitCode, JSON.stringify(result)).toBe(0);
      expect(result.stdout).not.toMatch(/connected/);
      expect(result.stdout.match(/ failed /g), result.stdout).toHaveLength(2);
    });

    sandboxEscapeTests();
  });

  describe('credentials for Redis and Chroma', () => {
    const chromaProbe = (url: string, withToken: boolean) =>
      `const t=require('fs').readFileSync('/run/secrets/chroma_token','utf8').trim();` +
      `fetch('${url}',{headers:${withToken ? "{authorization:'Bearer '+t}" : '{}'}})` +
      `.then(r=>{console.log(r.status);process.exit(0)},e=>{console.log(e.cause?.code??e.message);process.exit(1)})`;

    it('refuses redis-cli without credentials; the admin user gets in (control)', async () => {
      const [redis] = await containers('redis');
      const id = (redis as ContainerInfo).Id;
      const anon = await docker(['exec', id, 'redis-cli', 'set', 'flotilla:killswitch', 'x']);
      expect(anon.stdout + anon.stderr).toMatch(/NOAUTH/);
      const ping = await docker(['exec', id, 'redis-cli', 'ping']);
      expect(ping.stdout).not.toMatch(/PONG/);
      const admin = await docker([
        'exec',
        '-e',
        `REDISCLI_AUTH=${credential('redis_admin')}`,
        id,
        'redis-cli',
        '--no-auth-warning',
        '--user',
        'admin',
        'ping',
      ]);
      expect(admin.stdout.trim()).toBe('PONG');
    });

    it('from the dashboard container, its user reads the registry but every write is refused', async () => {
      // The dashboard is a profile the stack does not start: run one container of it, with its own
      // environment and secrets, the way `--profile dashboard` would.
      const r = await compose(
        [
          'run',
          '--rm',
          '--no-deps',
          '-T',
          '--entrypoint',
          '/nodejs/bin/node',
          'dashboard',
          '-e',
          redisScript(
            [
              ['SCARD', 'flotilla:roles'],
              ['HSET', 'flotilla:killswitch', 'global', '1'],
              ['LPUSH', 'flotilla:role.researcher:wait', 'forged'],
              ['XADD', 'flotilla:role.researcher:events', '*', 'event', 'added'],
              ['SET', 'flotilla:role.researcher:forged', '{}'],
              ['SADD', 'flotilla:roles', 'forged'],
            ],
            { user: 'dashboard', secret: 'redis_dashboard' },
          ),
        ],
        { timeoutMs: 120_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      const [auth, roles, ...writes] = JSON.parse(r.stdout.trim().split('\n').pop() as string) as string[];
      expect(auth).toBe('OK');
      expect(Number(roles)).toBeGreaterThan(0); // the read went through: researcher and coder registered
      expect(writes).toHaveLength(5);
      for (const w of writes) expect(w).toMatch(/^ERR: NOPERM/);
    });

    it("a worker's user cannot flip the kill switch; the orchestrator's can (control, restored)", async () => {
      const [researcher] = await containers('researcher');
      const [orch] = await containers('orchestrator');
      const worker = await docker([
        'exec',
        (researcher as ContainerInfo).Id,
        '/nodejs/bin/node',
        '-e',
        redisScript([['HSET', 'flotilla:killswitch', 'global', '1']], {
          user: 'worker-researcher',
          secret: 'redis_worker_researcher',
        }),
      ]);
      expect(JSON.parse(worker.stdout.trim())).toEqual(['OK', expect.stringMatching(/^ERR: NOPERM/)]);
      const control = await docker([
        'exec',
        (orch as ContainerInfo).Id,
        '/nodejs/bin/node',
        '-e',
        redisScript([['HSET', 'flotilla:killswitch', 'global', '0']], {
          user: 'orchestrator',
          secret: 'redis_orchestrator',
        }),
      ]);
      expect(JSON.parse(control.stdout.trim())).toEqual(['OK', expect.stringMatching(/^\d+$/)]);
    });

    it('Chroma answers 401 without the token, 200 with it, and is not reachable past its gate', async () => {
      const [orch] = await containers('orchestrator');
      const id = (orch as ContainerInfo).Id;
      const node = (script: string) => docker(['exec', id, '/nodejs/bin/node', '-e', script]);
      const url = 'http://chroma-gate:8000/api/v2/tenants/default_tenant/databases/default_database/collections';
      expect((await node(chromaProbe(url, false))).stdout.trim()).toBe('401');
      expect((await node(chromaProbe(url, true))).stdout.trim()).toBe('200');
      // Chroma itself is on the memory network only: no name to resolve, let alone a port to reach.
      const direct = await node(chromaProbe('http://chroma:8000/api/v2/heartbeat', true));
      expect(direct.code).not.toBe(0);
      expect(direct.stdout).toMatch(/ENOTFOUND|EAI_AGAIN/);
    });

    it('Chroma and its gate run non-root, read-only, without capabilities', () => {
      for (const service of ['chroma', 'chroma-gate']) {
        const [c] = all.filter((x) => serviceOf(x) === service);
        expect(c, service).toBeDefined();
        const h = (c as ContainerInfo).HostConfig;
        expect((c as ContainerInfo).Config.User, service).toBe('65532:65532');
        expect(h.ReadonlyRootfs, service).toBe(true);
        expect(h.CapDrop, service).toContain('ALL');
        expect(h.SecurityOpt ?? [], service).toEqual(
          expect.arrayContaining([expect.stringMatching(/^no-new-privileges/)]),
        );
        expect((c as ContainerInfo).State.Health?.Status, service).toBe('healthy');
      }
    });
  });

  it('rejects a request without an API key', async () => {
    const res = await fetch(`${baseUrl()}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ goal: 'no token' }),
    });
    expect(res.status).toBe(401);
  });

  it("keeps tenants apart: another tenant's key gets 404 for a task, and only the admin key sees roles", async () => {
    const taskId = await submit('a task of tenant stack-a');
    const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
    const other = as(process.env.STACK_OTHER_API_KEY as string);
    expect((await fetch(`${baseUrl()}/v1/tasks/${taskId}`, other)).status).toBe(404);
    expect((await fetch(`${baseUrl()}/v1/tasks/${taskId}/cancel`, { method: 'POST', ...other })).status).toBe(404);
    const listed = (await (await fetch(`${baseUrl()}/v1/tasks`, other)).json()) as { tasks: { taskId: string }[] };
    expect(listed.tasks.map((t) => t.taskId)).not.toContain(taskId);
    // Control: its own tenant reads it.
    expect((await view(taskId)).taskId).toBe(taskId);
    expect((await fetch(`${baseUrl()}/v1/roles`, as(token()))).status).toBe(403);
    expect((await fetch(`${baseUrl()}/v1/roles`, as(process.env.STACK_ADMIN_API_KEY as string))).status).toBe(200);
  });

  it(`fans one task out over all ${RESEARCHERS} researcher replicas at once`, async () => {
    // One clause per replica, each fetching a barrier page that answers only when RESEARCHERS requests
    // from distinct addresses are open together. With one job per replica at a time, the task can only
    // complete normally if every replica holds one of its subtasks at the same moment.
    const group = `fanout-${randomUUID().slice(0, 8)}`;
    const clauses = Array.from(
      { length: RESEARCHERS },
      (_, i) => `fetch ${SITE_URL}/barrier?group=${group}&n=${RESEARCHERS}&i=${i}`,
    );
    const v = await finished(await submit(clauses.join('; ')));
    expect(v.status).toBe('completed');
    const subtasks = v.subtasks.filter((s) => s.role === 'researcher');
    expect(subtasks).toHaveLength(RESEARCHERS);

    const events = about(await siteEvents(), group);
    const release = events.find((e) => e.event === 'release');
    expect(release, JSON.stringify(events)).toBeDefined();
    expect(events.filter((e) => e.event === 'timeout')).toEqual([]);
    const researchers = await containers('researcher');
    expect(new Set(release?.from)).toEqual(new Set(researchers.map(backendIp)));
    // The task view agrees: each subtask names the replica that ran it, one per container.
    expect(new Set(subtasks.map((s) => hostOf(s.replica)))).toEqual(new Set(researchers.map((c) => c.Config.Hostname)));
  });

  it("delivers a task's trace to the collector with orchestrator and researcher spans", async () => {
    const v = await finished(await submit(`fetch ${SITE_URL}/slow?ms=10&i=trace-${randomUUID().slice(0, 8)}`));
    expect(v.status).toBe('completed');
    const traceId = v.traceId;
    expect(traceId, 'the task view names its trace').toMatch(/^[0-9a-f]{32}$/);
    const services = await waitFor(
      'the trace in the collector log',
      async () => {
        const logs = await must(compose(['logs', '--no-color', 'otel-collector']));
        // The debug exporter prints one block per ResourceSpans: resource attributes, then spans.
        const found = new Set<string>();
        for (const block of logs.split(/ResourceSpans #\d+/)) {
          if (!block.includes(traceId as string)) continue;
          const name = /service\.name: Str\(([^)]+)\)/.exec(block)?.[1];
          if (name) found.add(name);
        }
        return found.has('orchestrator') && found.has('researcher') ? found : undefined;
      },
      60_000,
      2000,
    );
    expect([...services]).toEqual(expect.arrayContaining(['orchestrator', 'researcher']));
  });

  describe('egress', () => {
    // "Outside" is played by stack-outside (compose.site.yaml): the page server on the egress network,
    // where the egress proxy is the only other container. The researchers' allowlist names its address
    // and port; nobody else's does. Reaching it from another network means packets got forwarded out of
    // that network. (The host's own addresses are not a fair target: Docker's isolation rules filter
    // forwarded traffic only.) Nothing outside this machine is ever dialled.
    const outsideIp = () => process.env.STACK_OUTSIDE_IP as string;
    const image = () => `flotilla/researcher:${process.env.FLOTILLA_VERSION}`;
    const outsideEvents = async (): Promise<SiteEvent[]> => {
      const [c] = await containers(OUTSIDE_SERVICE);
      return (await must(docker(['logs', (c as ContainerInfo).Id])))
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as SiteEvent);
    };
    const proxyLog = async () =>
      (await must(compose(['logs', '--no-color', '--no-log-prefix', 'egress-proxy'])))
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { service: string; client: string; host: string; port: string; result: string });
    const exec = async (service: string, js: string) => {
      const [c] = await containers(service);
      return docker(['exec', (c as ContainerInfo).Id, '/nodejs/bin/node', '-e', js]);
    };
    /** A CONNECT to the proxy, as any HTTP client behind it sends one; prints the status line. */
    const viaProxy = (target: string) =>
      `const s=require('net').connect(3128,'egress-proxy',()=>s.write('CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n'));` +
      `s.once('data',d=>{console.log(String(d).split('\\r\\n')[0]);process.exit(0)});` +
      `s.on('error',e=>{console.log(e.code);process.exit(1)});setTimeout(()=>{console.log('timeout');process.exit(2)},5000)`;
    /** A direct TCP connection to the outside listener; prints the error code, or "connected". */
    const direct = () =>
      `const s=require('net').connect(${OUTSIDE_PORT},'${outsideIp()}');s.on('connect',()=>{console.log('connected');process.exit(0)});` +
      `s.on('error',e=>{console.log(e.code);process.exit(1)});setTimeout(()=>{console.log('timeout');process.exit(2)},3000)`;

    it('the egress proxy is the only service on the egress network', async () => {
      const on = (await containers())
        .filter((c) => `${project}_egress` in c.NetworkSettings.Networks)
        .map(serviceOf)
        .sort();
      expect(on).toEqual(['egress-proxy', OUTSIDE_SERVICE].sort());
    });

    it("reaches an allowlisted host through the proxy: a researcher's http.get, end to end", async () => {
      const marker = `outside-${randomUUID().slice(0, 8)}`;
      const v = await finished(await submit(`fetch http://${outsideIp()}:${OUTSIDE_PORT}/slow?ms=10&i=${marker}`));
      expect(v.status).toBe('completed');
      const [proxy] = await containers('egress-proxy');
      const proxyIp = (proxy as ContainerInfo).NetworkSettings.Networks[`${project}_egress`]?.IPAddress;
      const answered = (await outsideEvents()).filter((e) => e.event === 'answered' && e.path?.includes(marker));
      // The listener saw the request come from the proxy, not from a researcher.
      expect(answered.map((e) => e.from)).toEqual([proxyIp]);
      // squid logs a tunnel when it closes, which a pooled keep-alive connection does only after a while.
      const line = await waitFor(
        'the proxy to log the tunnel',
        async () => (await proxyLog()).find((l) => l.host === outsideIp() && l.result === 'TCP_TUNNEL'),
        60_000,
        1000,
      );
      expect(line, 'the proxy logged the tunnel with its caller').toMatchObject({
        service: 'researcher',
        port: String(OUTSIDE_PORT),
      });
    });

    it("refuses a host off the caller's allowlist with 403, logs and counts the refusal by service", async () => {
      const before = (await outsideEvents()).length;
      // A port the researchers' list does not name, and the researchers' own host asked for by the coder.
      const r = await exec('researcher', viaProxy(`${outsideIp()}:${OUTSIDE_PORT + 1}`));
      expect(r.stdout.trim()).toBe('HTTP/1.1 403 Forbidden');
      const c = await exec('coder', viaProxy(`${outsideIp()}:${OUTSIDE_PORT}`));
      expect(c.stdout.trim()).toBe('HTTP/1.1 403 Forbidden');
      // Control: the same CONNECT from a researcher is let through.
      const ok = await exec('researcher', viaProxy(`${outsideIp()}:${OUTSIDE_PORT}`));
      expect(ok.stdout.trim()).toBe('HTTP/1.1 200 Connection established');

      const denied = (await proxyLog()).filter((l) => l.result === 'TCP_DENIED' && l.host === outsideIp());
      expect(denied.map((l) => `${l.service} ${l.port}`).sort()).toEqual(
        [`coder ${OUTSIDE_PORT}`, `researcher ${OUTSIDE_PORT + 1}`].sort(),
      );
      // The proxy's own per-client counters name the caller and count its refusals.
      const [proxy] = await containers('egress-proxy');
      const stats = await must(
        docker([
          'exec',
          (proxy as ContainerInfo).Id,
          'squidclient',
          '-h',
          '127.0.0.1',
          '-p',
          '3128',
          'mgr:client_list',
        ]),
      );
      const [coder] = await containers('coder');
      const coderIp = (coder as ContainerInfo).NetworkSettings.Networks[`${project}_outbound`]?.IPAddress;
      const block = stats.split(/\n(?=Address: )/).find((b) => b.startsWith(`Address: ${coderIp}\n`));
      expect(block, stats).toMatch(/Name:\s+\S*coder\S*/);
      expect(block).toMatch(/TCP_DENIED\s+[1-9]/);
      // Only the allowed tunnel opened a connection at the listener, from the proxy; the refused ones
      // never arrived.
      const proxyIp = (proxy as ContainerInfo).NetworkSettings.Networks[`${project}_egress`]?.IPAddress;
      const arrived = (await outsideEvents()).slice(before);
      expect(arrived).toEqual([{ event: 'connection', from: proxyIp }]);
    });

    it('cannot be bypassed: a direct connection from an agent service never reaches the listener', async () => {
      const before = (await outsideEvents()).length;
      // researcher and coder are on internal networks only (Docker drops what they send past them); the
      // orchestrator also has `api` for its published port (compose/README.md, "Egress"), which Docker
      // keeps apart from egress. Before the proxy all three sat on egress and connected.
      for (const service of ['researcher', 'coder', 'orchestrator']) {
        const r = await exec(service, direct());
        expect(r.stdout.trim(), service).not.toBe('connected');
        expect(r.code, service).not.toBe(0);
      }
      expect((await outsideEvents()).slice(before)).toEqual([]);
    });

    it('redis and chroma cannot reach it', async () => {
      const before = (await outsideEvents()).length;
      const [redis] = await containers('redis');
      // Dropped packets mean a TCP connect that hangs until the kernel gives up; `timeout` bounds it.
      const r = await docker([
        'exec',
        (redis as ContainerInfo).Id,
        'timeout',
        '5',
        'redis-cli',
        '-h',
        outsideIp(),
        '-p',
        String(OUTSIDE_PORT),
        'ping',
      ]);
      expect(r.code).not.toBe(0);
      const [chroma] = await containers('chroma');
      const c = await docker([
        'exec',
        (chroma as ContainerInfo).Id,
        'bash',
        '-c',
        `timeout 3 bash -c 'exec 3<>/dev/tcp/${outsideIp()}/${OUTSIDE_PORT}'`,
      ]);
      expect(c.code).not.toBe(0);
      expect((await outsideEvents()).length).toBe(before);
    });

    it('the sandbox network cannot reach it', async () => {
      const before = (await outsideEvents()).length;
      const r = await docker([
        'run',
        '--rm',
        '--network',
        `${project}_sandbox`,
        '--entrypoint',
        '/nodejs/bin/node',
        image(),
        '-e',
        direct(),
      ]);
      expect(r.code).not.toBe(0);
      expect((await outsideEvents()).length).toBe(before);
    });
  });

  it('finishes a task when a researcher crashes mid-fetch, and the crashed container restarts', async () => {
    const marker = `crash-${randomUUID().slice(0, 8)}`;
    const taskId = await submit(`fetch ${SITE_URL}/slow?ms=8000&i=${marker}`);
    // The victim is whichever replica has the page request open: its subtask is provably mid-flight.
    const first = await waitFor(
      'a researcher to request the slow page',
      async () => about(await siteEvents(), marker).find((e) => e.event === 'request'),
      60_000,
      100,
    );
    const container = (await containers('researcher')).find((c) => backendIp(c) === first.from);
    expect(container, `researcher container with address ${String(first.from)}`).toBeDefined();
    const before = (container as ContainerInfo).RestartCount;
    // A crash, not `docker kill`: the engine treats any `docker kill` as a manual stop and never applies
    // the restart policy after it. SIGKILL of the service process is what an OOM kill or a fatal bug does.
    const killer =
      "const fs=require('fs');for(const p of fs.readdirSync('/proc')){if(!/^\\d+$/.test(p)||+p===process.pid)continue;" +
      "let c='';try{c=fs.readFileSync('/proc/'+p+'/cmdline','utf8')}catch{}" +
      "if(c.includes('dist/main.js')){process.kill(+p,'SIGKILL');console.log('killed',p)}}";
    const k = await docker(['exec', (container as ContainerInfo).Id, '/nodejs/bin/node', '-e', killer]);
    expect(k.stdout).toMatch(/killed \d+/);
    await waitFor(
      'the site to see the request dropped',
      async () => about(await siteEvents(), marker).some((e) => e.event === 'aborted' && e.from === first.from),
      30_000,
      200,
    );

    const v = await finished(taskId, 240_000);
    expect(v.status).toBe('completed');
    // The lost subtask ran again (BullMQ's stalled-job check) and this time got its page.
    const events = about(await siteEvents(), marker);
    expect(events.filter((e) => e.event === 'request').length, JSON.stringify(events)).toBeGreaterThanOrEqual(2);
    expect(
      events.some((e) => e.event === 'answered'),
      JSON.stringify(events),
    ).toBe(true);
    await waitFor(
      'the crashed researcher to restart and be healthy',
      async () => {
        const [c] = JSON.parse(await must(docker(['inspect', (container as ContainerInfo).Id]))) as ContainerInfo[];
        return c && c.RestartCount > before && isReady(c);
      },
      120_000,
      1000,
    );
  });

  // After every test that needs the stable researchers: a promotion leaves them on another image.
  rolloutTests();

  describe('no secret leaks', () => {
    const images = () => FLOTILLA.map((s) => `flotilla/${s}:${process.env.FLOTILLA_VERSION}`);

    it('not in docker history', async () => {
      for (const image of images()) {
        const h = await must(docker(['history', '--no-trunc', image]));
        for (const c of canaries()) expect(h.includes(c), image).toBe(false);
      }
    });

    it('not in any image layer (docker save)', async () => {
      for (const image of images()) {
        const found = await scanStream('docker', ['save', image], canaries());
        expect(found, image).toEqual([]);
      }
    });

    it('not in docker inspect (env, labels, config)', async () => {
      const ids = (await containers()).map((c) => c.Id);
      const inspect = await must(docker(['inspect', ...ids, ...images()]));
      for (const c of canaries()) expect(inspect.includes(c)).toBe(false);
      // The secrets are there, as files: prove the canary is really what the services got.
      const [orch] = await containers('orchestrator');
      const read = await docker([
        'exec',
        (orch as ContainerInfo).Id,
        '/nodejs/bin/node',
        '-e',
        "process.stdout.write(require('fs').readFileSync('/run/secrets/api_keys','utf8'))",
      ]);
      expect(read.stdout.trim()).toBe(process.env.STACK_API_KEYS_TEXT);
    });

    it('not in any container log', async () => {
      const logs = await must(compose(['logs', '--no-color']));
      expect(logs.length).toBeGreaterThan(0);
      for (const c of canaries()) expect(logs.includes(c)).toBe(false);
    });
  });

  it('tears down leaving no containers', async () => {
    await must(compose(['down', '--volumes', '--remove-orphans', '--timeout', '40'], { timeoutMs: 180_000 }));
    expect(await containers()).toEqual([]);
  });
});

/** Which of `needles` appear anywhere in a command's stdout, read as a stream (images are large). */
function scanStream(cmd: string, args: string[], needles: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    // A deadline like every other docker call: a wedged engine must fail the test, not hang it.
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 });
    const keep = Math.max(...needles.map((n) => n.length));
    const found = new Set<string>();
    let tail = '';
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (chunk: string) => {
      const window = tail + chunk;
      for (const n of needles) if (window.includes(n)) found.add(n);
      tail = window.slice(-keep);
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve([...found]) : reject(new Error(`${cmd} exited ${code ?? signal}`)),
    );
  });
}
