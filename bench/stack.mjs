// flotilla's services as the bench runs them: real processes started the way the images start them
// (`node --import @flotilla/runtime/register dist/main.js`), on this Node, plus a small API client.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '@flotilla/devkit';

const packagesDir = fileURLToPath(new URL('../packages/', import.meta.url));

/**
 * One service process. Its logs go to a file, as Compose's json-file driver keeps them: the services
 * log at the level Compose sets (info), and the bench pays neither a pipe nor a growing buffer for it.
 */
export async function startService(pkg, name, env, logDir) {
  const port = env.HEALTH_PORT ?? String(await freePort());
  const logFile = join(logDir, `${name}.log`);
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
    cwd: join(packagesDir, pkg),
    // Only what the bench sets: a REDIS_URL or OTEL_* in the caller's shell must not leak in.
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'info',
      SERVICE_NAME: name,
      HEALTH_HOST: '127.0.0.1',
      HEALTH_PORT: port,
      ...env,
    },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  let exit;
  void exited.then((code) => {
    exit = code;
  });
  /** SIGTERM, the graceful drain (which also flushes the service's spans), SIGKILL after 30 s. */
  const stop = async () => {
    if (exit !== undefined) return;
    const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(force);
  };
  try {
    await waitFor(
      async () => {
        if (exit !== undefined)
          throw new Error(`${name} exited with ${exit}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
        try {
          return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
        } catch {
          return false;
        }
      },
      { what: `${name} ready`, timeoutMs: 60_000, intervalMs: 100 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { name, url: `http://127.0.0.1:${port}`, stop };
}

/**
 * An orchestrator and `researchers` researcher replicas on one queue prefix, each a process of its
 * own as under `docker compose --scale researcher=N`. `addResearcher` scales up by one.
 */
export async function startStack({ name, env, orchestratorEnv = {}, researcherEnv = {}, researchers = 1, logDir }) {
  const services = [];
  let replicas = 0;
  const addResearcher = async () => {
    const id = `${name}-researcher-${++replicas}`;
    const svc = await startService('researcher', id, { ...env, ...researcherEnv, REPLICA_ID: id }, logDir);
    services.push(svc);
    return svc;
  };
  try {
    // One port for the API and the probes, as in Compose.
    const port = String(await freePort());
    const orchestrator = await startService(
      'orchestrator',
      `${name}-orchestrator`,
      { AUTH: 'off', ...env, ...orchestratorEnv, PORT: port, HEALTH_PORT: port },
      logDir,
    );
    services.push(orchestrator);
    // One after another: the planner plans for the roles it sees live, so workers come up first in
    // Compose too, and parallel start-ups would only compete for the same two cores.
    for (let i = 0; i < researchers; i++) await addResearcher();
    return {
      api: apiClient(orchestrator.url),
      addResearcher,
      stop: () => Promise.all(services.map((s) => s.stop())),
    };
  } catch (err) {
    await Promise.all(services.map((s) => s.stop()));
    throw err;
  }
}

const TERMINAL = /(?:^|\n)event: (completed|failed|cancelled)\n/;

/**
 * What a user's program does with the API: POST /v1/tasks, then follow GET /v1/tasks/{id}/events
 * until the task ends. node:http with a keep-alive agent, so the client's own cost stays small and
 * no connection is opened per task.
 */
export function apiClient(baseUrl) {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const base = new URL(baseUrl);
  const call = (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          agent,
          host: base.hostname,
          port: base.port,
          method,
          path,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () =>
            res.statusCode >= 300
              ? reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 500)}`))
              : resolve(JSON.parse(text)),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });

  return {
    /** Submits a task and returns its id. */
    submit: async (goal) => (await call('POST', '/v1/tasks', { v: 1, goal })).taskId,
    view: (taskId) => call('GET', `/v1/tasks/${taskId}`),
    /** Resolves with the terminal event's type as soon as it arrives on the task's event stream. */
    ended: (taskId) =>
      new Promise((resolve, reject) => {
        const req = request(
          { agent, host: base.hostname, port: base.port, path: `/v1/tasks/${taskId}/events` },
          (res) => {
            if (res.statusCode !== 200) return reject(new Error(`events of ${taskId}: ${res.statusCode}`));
            let text = '';
            let done = false;
            res.setEncoding('utf8');
            res.on('data', (d) => {
              if (done) return;
              text += d;
              const m = TERMINAL.exec(text);
              if (m) {
                done = true;
                resolve(m[1]);
              }
            });
            // The server ends the stream after the terminal event; reading it to the end keeps the
            // connection reusable.
            res.on('end', () => done || reject(new Error(`events of ${taskId} ended early`)));
          },
        );
        req.on('error', reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
}
