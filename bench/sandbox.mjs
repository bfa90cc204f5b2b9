// The sandbox's speed goal, measured side by side in one run: `print(1)` in python through the
// sandbox's API (HTTP, namespaces, limits, the run's own tmpfs) against a bare `python3 -c 'print(1)'`
// spawn of the same interpreter on the same kernel. Not a test: numbers vary with the machine; it
// prints p50/p99 and their ratios (goal: the round trip at most 2.5x the bare spawn under runc).
//
// Three targets, each against its own bare spawn:
//   process  the service as a local process (as in `pnpm dev`); bare: the interpreter it found.
//   runc     its image under Docker's runc, hardened as in Compose; bare: spawned inside the container.
//   runsc    the same under gVisor (scripts/docker/ensure-runsc); bare: spawned inside gVisor too,
//            and the host's bare spawn beside it, since under gVisor both sides pay gVisor's price.
// The container targets need a Docker engine and the image (built here from the Dockerfile, whose
// bases `scripts/offline-images` provides offline); without them they are skipped, saying why.
//
//   node bench/sandbox.mjs [--quick] [--write-readme]   (after pnpm build; BENCH_SANDBOX_RUNS, default 200)
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, startProcess, stopAll, waitFor } from '@flotilla/test-utils';
import { writeReadmeBlock } from './readme.mjs';

const quick = process.argv.includes('--quick');
const RUNS = Number(process.env.BENCH_SANDBOX_RUNS ?? (quick ? 40 : 200));
const WARMUP = quick ? 5 : 20;
/** API runs and bare spawns take turns in rounds of this many, so a noisy second lands on both. */
const ROUND = 20;
const IMAGE = 'flotilla/sandbox:bench';
const repo = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

const lines = [
  `flotilla bench (sandbox): print(1) in python, ${RUNS} runs per side after ${WARMUP} warm-up, API round trip vs bare spawn`,
];
const fmt = (s) => `p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms`;
const ratio = (a, b) => `${(a.p50 / b.p50).toFixed(2)}x p50, ${(a.p99 / b.p99).toFixed(2)}x p99`;
const say = (line) => {
  lines.push(line);
  console.log(line);
};
console.log(lines[0]);

// 1. The service as a local process.
{
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const service = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
    cwd: `${repo}packages/sandbox`,
    env: {
      PORT: String(port),
      HEALTH_HOST: '127.0.0.1',
      SANDBOX_TOKEN: token,
      SANDBOX_TOKEN_FILE: undefined,
      LOG_LEVEL: 'warn',
    },
  });
  try {
    const api = await sandboxApi(`http://127.0.0.1:${port}`, token);
    const python = JSON.parse((await api('import sys, json; print(json.dumps(sys.executable))')).stdout);
    const kernel = await kernelOf(api);
    const { sandbox, bare } = await measure(api, (n) => spawnBare(python, n));
    say(
      `  process (kernel ${kernel}): API ${fmt(sandbox)}; bare ${fmt(bare)}: ${ratio(sandbox, bare)} (goal <= 2.5x p50)`,
    );
  } finally {
    await stopAll([service]);
  }
}

// 2. and 3. The image under runc and under runsc.
const engine = await containerSetup();
if (typeof engine === 'string') say(`  containers: skipped (${engine})`);
else {
  for (const runtime of ['runc', 'runsc']) {
    if (!engine.runtimes.includes(runtime)) {
      say(
        `  container, ${runtime}: skipped (the engine has no ${runtime} runtime; scripts/docker/ensure-runsc adds it)`,
      );
      continue;
    }
    const port = await freePort();
    const token = randomBytes(24).toString('hex');
    const name = `flotilla-bench-sandbox-${runtime}`;
    await run('docker', ['rm', '-f', name]).catch(() => undefined);
    // The Compose service's hardening (compose/compose.yaml), with the port published on loopback.
    await run('docker', [
      ...['run', '-d', '--name', name, '--runtime', runtime, '--init', '--read-only', '--tmpfs', '/tmp'],
      ...['--user', '65532:65532', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true'],
      ...['--security-opt', `seccomp=${repo}compose/sandbox-seccomp.json`, '--security-opt', 'apparmor=unconfined'],
      ...['--security-opt', 'systempaths=unconfined', '--memory', '1g', '--pids-limit', '256'],
      ...['-e', `SANDBOX_TOKEN=${token}`, '-e', 'HEALTH_PORT=8080', '-e', 'LOG_LEVEL=warn'],
      ...['-p', `127.0.0.1:${port}:8080`, IMAGE],
    ]);
    try {
      const api = await sandboxApi(`http://127.0.0.1:${port}`, token);
      const kernel = await kernelOf(api);
      const inside = (n) => spawnInContainer(name, n);
      const { sandbox, bare } = await measure(api, inside);
      say(
        `  container, ${runtime} (kernel ${kernel}): API ${fmt(sandbox)}; bare in the container ${fmt(bare)}: ${ratio(sandbox, bare)}`,
      );
      if (runtime === 'runsc') {
        const host = await timed(WARMUP, RUNS, (n) => spawnBare('/usr/bin/python3', n));
        say(
          `    beside the host's bare spawn (${fmt(host)}): ${ratio(sandbox, host)}; gVisor's own price on a spawn: ${ratio(bare, host)}`,
        );
      }
    } finally {
      await run('docker', ['rm', '-f', name]).catch(() => undefined);
    }
  }
}
say(`  machine: ${cpus().length} cores, Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}`);

if (process.argv.includes('--write-readme') && !quick) {
  writeReadmeBlock('bench-sandbox', lines, () => 0, new URL('../packages/sandbox/README.md', import.meta.url));
}

/** POST /v1/run as a function of the code, once the service answers /readyz. */
async function sandboxApi(url, token) {
  await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok, {
    what: `the sandbox at ${url} ready`,
    timeoutMs: 60_000,
  });
  return async (code) => {
    const res = await fetch(`${url}/v1/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ language: 'python', code }),
    });
    if (!res.ok) throw new Error(`sandbox answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
}

/** The kernel a run meets: the host's, or gVisor's (`4.19.0-gvisor`). */
async function kernelOf(api) {
  return (await api('import os; print(os.uname().release)')).stdout.trim();
}

/** Warm-up, then rounds taking turns: ROUND API runs, then ROUND bare spawns (timed by `bare(n)`). */
async function measure(api, bare) {
  const sandbox = [];
  const spawns = [];
  for (let i = 0; i < WARMUP; i++) await api('print(1)');
  await bare(WARMUP);
  while (sandbox.length < RUNS) {
    for (let i = 0; i < ROUND; i++) {
      const t = performance.now();
      const r = await api('print(1)');
      sandbox.push(performance.now() - t);
      if (r.stdout !== '1\n') throw new Error(`unexpected sandbox result ${JSON.stringify(r)}`);
    }
    spawns.push(...(await bare(ROUND)));
  }
  return { sandbox: stats(sandbox), bare: stats(spawns) };
}

async function timed(warmup, n, bare) {
  await bare(warmup);
  return stats(await bare(n));
}

/** n sequential bare spawns on this host; their times in ms. */
async function spawnBare(python, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise((resolve, reject) => {
      const child = spawn(python, ['-c', 'print(1)'], { stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout.resume();
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`python exited ${code}`))));
    });
    times.push(performance.now() - t);
  }
  return times;
}

/** n sequential bare spawns inside the container, timed there (docker exec's own cost is not in them). */
async function spawnInContainer(name, n) {
  const script = `
const { spawnSync } = require('node:child_process');
const times = [];
for (let i = 0; i < ${n}; i++) {
  const t = performance.now();
  const r = spawnSync('/usr/bin/python3', ['-c', 'print(1)']);
  if (r.status !== 0) process.exit(1);
  times.push(performance.now() - t);
}
console.log(JSON.stringify(times));`;
  const { stdout } = await run('docker', ['exec', name, '/usr/local/bin/node', '-e', script]);
  return JSON.parse(stdout);
}

/** The engine's runtimes once the image is built, or why the container targets cannot run. */
async function containerSetup() {
  let runtimes;
  try {
    runtimes = Object.keys(JSON.parse((await run('docker', ['info', '--format', '{{json .Runtimes}}'])).stdout));
  } catch {
    return 'no Docker engine answers; scripts/docker/ensure-engine starts one';
  }
  const version = /^ARG NODE_BUILD_IMAGE=(.*)$/m.exec(readFileSync(`${repo}Dockerfile`, 'utf8'))?.[1];
  try {
    await run('docker', ['build', '-q', '--target', 'sandbox', '--build-arg', 'PACKAGE=sandbox', '-t', IMAGE, repo], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    return `the sandbox image did not build (its bases, e.g. ${version}, come from a registry or scripts/offline-images): ${String(
      err.stderr ?? err,
    )
      .trim()
      .split('\n')
      .at(-1)}`;
  }
  return { runtimes };
}

function stats(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}
