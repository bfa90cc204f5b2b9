// Config fuzzing (issue 16): random environments (missing, malformed, huge, unicode, negative values)
// for each service's real entry point. Every one must start (exit 0 after validation) or exit 78 with
// readable lines: never a crash with a stack trace, never a secret in its output, never a hang.
// A service's start-up costs over a second of CPU, so 1,000 processes per service do not fit the suite's
// budget: each service's entry point validates CHAOS_CONFIG_RUNS environments in one process
// (--check-config-batch=<file>: the same decision as its start, line by line), and CHAOS_CONFIG_SPAWNS of them
// also run as processes of their own (--check-config), which shows the real exit code and stderr.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dashboardConfigSchema } from '../../packages/dashboard/src/config.js';
import { orchestratorConfigSchema } from '../../packages/orchestrator/src/config.js';
import { workerConfigSchema } from '../../packages/runtime/src/worker/run.js';
import { sandboxConfigSchema } from '../../packages/sandbox/src/config.js';
import { knob, recordFigures } from './harness.js';

const RUNS = knob('CHAOS_CONFIG_RUNS', 1000);
const SPAWNS = knob('CHAOS_CONFIG_SPAWNS', 8);
const TIMEOUT_MS = 30_000;
const BATCH_TIMEOUT_MS = 180_000;
const SEED = knob('CHAOS_CONFIG_SEED', Date.now() % 2 ** 31);

const pkg = (name: string) => fileURLToPath(new URL(`../../packages/${name}`, import.meta.url));
const services = [
  { name: 'orchestrator', keys: Object.keys(orchestratorConfigSchema.shape) },
  { name: 'researcher', keys: Object.keys(workerConfigSchema.shape) },
  { name: 'coder', keys: Object.keys(workerConfigSchema.shape) },
  { name: 'sandbox', keys: Object.keys(sandboxConfigSchema.shape) },
  { name: 'dashboard', keys: Object.keys(dashboardConfigSchema.shape) },
];

const isSecretName = (name: string) => /(^|_)(PASSWORD|TOKEN|API_KEY|SECRET)$/.test(name);

/** A value an operator (or a broken template) might set. No NUL: an environment cannot hold one. */
const value = fc
  .oneof(
    fc.constantFrom('', ' ', '0', '-1', '-0.5', '1e309', 'NaN', 'true', 'off', 'on', 'offline', 'openai', '*', ','),
    fc.constantFrom('redis://127.0.0.1:6379', 'http://127.0.0.1:1', 'https://例え.テスト/', 'ftp://x', 'redis://:@/'),
    fc.constantFrom('/nonexistent/file', '/etc/hostname', '/dev/null', '/'),
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }).map(String),
    fc.double({ noNaN: false }).map(String),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    // Up to 100 kB: Linux refuses a single variable over 128 kB (E2BIG) before the service sees it.
    fc.nat({ max: 100_000 }).map((n) => 'x'.repeat(n)),
  )
  .map((v) => v.replaceAll('\0', ''));

function envFor(keys: string[]) {
  const names = [...keys, ...keys.map((k) => `${k}_FILE`), 'OTEL_EXPORTER_OTLP_ENDPOINT', 'NODE_OPTIONS_IGNORED'];
  return fc.record({
    // A valid start half the time, so later variables are reached and some runs pass validation.
    base: fc.boolean(),
    vars: fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 6 }),
  });
}

interface Outcome {
  code: number | string;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function run(service: string, args: string[], env: Record<string, string>, input: string, timeoutMs: number) {
  return new Promise<Outcome>((resolve) => {
    const child = spawn(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js', ...args], {
      cwd: pkg(service),
      // Only what the run sets, plus PATH: the machine's own settings must not decide the outcome.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? 'unknown', stdout, stderr, timedOut });
    });
  });
}

/** What is wrong with one outcome, if anything. */
function judge(out: Outcome, env: Record<string, string>): string[] {
  const secrets = Object.entries(env)
    .filter(([k, v]) => isSecretName(k) && v.trim().length >= 8)
    .map(([, v]) => v.trim())
    // A value some other variable also holds may rightly be quoted in that variable's line.
    .filter((v) => !Object.entries(env).some(([k, other]) => !isSecretName(k) && other.includes(v)));
  const problems: string[] = [];
  if (out.timedOut) problems.push('no exit in time');
  else if (out.code !== 0 && out.code !== 78) problems.push(`exit ${out.code}`);
  if (out.code === 78 && !/^config error: /m.test(out.stderr)) problems.push('exit 78 without a config error line');
  if (/^\s+at /m.test(out.stderr) || /^\s+at /m.test(out.stdout)) problems.push('a stack trace');
  for (const s of secrets)
    if (out.stderr.includes(s) || out.stdout.includes(s)) problems.push('a secret in its output');
  return problems;
}

const shorten = (env: Record<string, string>) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.length > 80 ? `${v.slice(0, 80)}… (${v.length})` : v]));

describe('config fuzzing', () => {
  it(`starts or exits 78 with readable lines, for ${RUNS} random environments per service`, async () => {
    const failures: unknown[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-config-fuzz-'));
    const tally: Record<string, { ok: number; config: number }> = {};
    for (const svc of services) {
      const envs = fc.sample(envFor(svc.keys), { numRuns: RUNS, seed: SEED }).map(
        ({ base, vars }): Record<string, string> => ({
          ...(base
            ? {
                LLM_PROVIDER: 'offline',
                AUTH: 'off',
                HEALTH_HOST: '127.0.0.1',
                SANDBOX_TOKEN: 'chaos-fuzz-sandbox-token-0123456789',
              }
            : {}),
          ...vars,
        }),
      );
      const count = { ok: 0, config: 0 };
      tally[svc.name] = count;
      // All of them through the entry point's own decision, in one process.
      const file = join(dir, `${svc.name}.jsonl`);
      writeFileSync(file, envs.map((e) => JSON.stringify(e)).join('\n'));
      const batch = await run(svc.name, [`--check-config-batch=${file}`], {}, '', BATCH_TIMEOUT_MS);
      let lines: string[] = [];
      try {
        lines = readFileSync(`${file}.out`, 'utf8').split('\n').filter(Boolean);
      } catch {
        // no output: reported below
      }
      if (batch.code !== 0 || lines.length !== envs.length)
        failures.push({
          service: svc.name,
          batch: batch.code,
          lines: lines.length,
          stderr: batch.stderr.slice(0, 600),
        });
      lines.forEach((line, i) => {
        const env = envs[i] as Record<string, string>;
        const { code, stderr } = JSON.parse(line) as { code: number; stderr: string };
        if (code === 0) count.ok++;
        if (code === 78) count.config++;
        const problems = judge({ code, stderr, stdout: '', timedOut: false }, env);
        if (problems.length > 0) failures.push({ service: svc.name, sample: i, problems, env: shorten(env), stderr });
      });
      // Some of them as processes of their own: the real exit code, stderr, and the telemetry import.
      for (let i = 0; i < Math.min(SPAWNS, envs.length); i++) {
        const env = envs[i] as Record<string, string>;
        const out = await run(svc.name, ['--check-config'], env, '', TIMEOUT_MS);
        const problems = judge(out, env);
        const expected = (JSON.parse(lines[i] ?? '{}') as { code?: number }).code;
        if (!out.timedOut && out.code !== expected) problems.push(`exit ${out.code}, the batch said ${expected}`);
        if (problems.length > 0)
          failures.push({
            service: svc.name,
            spawned: i,
            problems,
            env: shorten(env),
            stderr: out.stderr.slice(0, 600),
          });
      }
    }
    recordFigures('configFuzz', {
      runsPerService: RUNS,
      spawnsPerService: SPAWNS,
      seed: SEED,
      tally,
      failures: failures.length,
    });
    console.log('config fuzz:', JSON.stringify({ seed: SEED, tally, failures: failures.length }));
    expect(failures.slice(0, 5)).toEqual([]);
  });
});
