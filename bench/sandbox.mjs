// The sandbox's speed goal, measured side by side in one run: `print(1)` in python through the
// sandbox's API (HTTP, namespaces, limits, the run's own tmpfs) against a bare `python3 -c 'print(1)'`
// spawn of the same interpreter. Not a test: numbers vary with the machine; it prints p50/p99 and
// their ratios (goal: the round trip at most 2.5x the bare spawn under runc).
//   node bench/sandbox.mjs        (after pnpm build; BENCH_SANDBOX_RUNS, default 200)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { freePort, startProcess, stopAll, waitFor } from '@flotilla/test-utils';

const RUNS = Number(process.env.BENCH_SANDBOX_RUNS ?? 200);
const WARMUP = 20;

const packageDir = fileURLToPath(new URL('../packages/sandbox/', import.meta.url));
const port = await freePort();
const token = randomBytes(24).toString('hex');
const service = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
  cwd: packageDir,
  env: {
    PORT: String(port),
    HEALTH_HOST: '127.0.0.1',
    SANDBOX_TOKEN: token,
    SANDBOX_TOKEN_FILE: undefined,
    LOG_LEVEL: 'warn',
  },
});
const url = `http://127.0.0.1:${port}`;

try {
  await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok, {
    what: 'the sandbox ready',
    timeoutMs: 30_000,
  });
  // The interpreter the sandbox found, so both sides start the same binary.
  const probe = await runInSandbox('import sys, json; print(json.dumps(sys.executable))');
  const python = JSON.parse(probe.stdout);

  const sandbox = [];
  const bare = [];
  for (let i = 0; i < WARMUP; i++) {
    await runInSandbox('print(1)');
    await spawnBare(python);
  }
  // Interleaved, so a noisy second on this shared machine lands on both sides alike.
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const r = await runInSandbox('print(1)');
    if (r.stdout !== '1\n') throw new Error(`unexpected sandbox result ${JSON.stringify(r)}`);
    sandbox.push(performance.now() - t);
    t = performance.now();
    await spawnBare(python);
    bare.push(performance.now() - t);
  }

  const s = stats(sandbox);
  const b = stats(bare);
  const fmt = (x) => `${x.toFixed(1)} ms`;
  const isolation = process.env.SANDBOX_ISOLATION ?? 'auto';
  console.log(
    `sandbox bench: ${RUNS} runs each, isolation ${isolation}, interpreter ${python}, Node ${process.versions.node}`,
  );
  console.log(`  print(1) through POST /v1/run   p50 ${fmt(s.p50)}   p99 ${fmt(s.p99)}`);
  console.log(`  bare python3 -c 'print(1)'      p50 ${fmt(b.p50)}   p99 ${fmt(b.p99)}`);
  console.log(
    `  ratio                           p50 ${(s.p50 / b.p50).toFixed(2)}x   p99 ${(s.p99 / b.p99).toFixed(2)}x   (goal <= 2.5x)`,
  );
} finally {
  await stopAll([service]);
}

async function runInSandbox(code) {
  const res = await fetch(`${url}/v1/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ language: 'python', code }),
  });
  if (!res.ok) throw new Error(`sandbox answered ${res.status}: ${await res.text()}`);
  return res.json();
}

function spawnBare(python) {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-c', 'print(1)'], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`python exited ${code}`))));
  });
}

function stats(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}
