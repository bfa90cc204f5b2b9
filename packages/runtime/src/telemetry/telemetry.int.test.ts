// Spawns real node processes started with `--import @flotilla/runtime/register` and a local HTTP
// server speaking OTLP/HTTP: the register hook's job is process start-up, which only a real
// process has. Runs the built files (build first: npx tsc -b packages/runtime/tsconfig.json).
import { fileURLToPath } from 'node:url';
import { type RunningProcess, startOtlpReceiver, startProcess, stopAll, waitFor } from '@flotilla/test-utils';
import { afterEach, describe, expect, it } from 'vitest';

const register = fileURLToPath(new URL('../../dist/telemetry/register.js', import.meta.url));
const fixture = fileURLToPath(new URL('../../dist/telemetry/fixtures/traced.js', import.meta.url));

let procs: RunningProcess[] = [];
let collector: { close(): Promise<void> } | undefined;

afterEach(async () => {
  await stopAll(procs);
  procs = [];
  await collector?.close();
  collector = undefined;
});

/** A stand-in OpenTelemetry collector that keeps the OTLP/HTTP bodies by path. */
async function startCollector() {
  const receiver = await startOtlpReceiver();
  collector = receiver;
  return { url: receiver.url, received: receiver.bodies };
}

function run(env: Record<string, string | undefined>) {
  const proc = startProcess(process.execPath, ['--import', register, fixture], {
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
      OTEL_SERVICE_NAME: undefined,
      SERVICE_NAME: 'traced-fixture',
      ...env,
    },
  });
  procs.push(proc);
  return proc;
}

describe('the register hook', () => {
  it('pushes traces and metrics over OTLP/HTTP with the service name when an endpoint is set', async () => {
    const { url, received } = await startCollector();
    const proc = run({ OTEL_EXPORTER_OTLP_ENDPOINT: url, SERVICE_VERSION: '9.9.9' });
    expect(await proc.exited).toBe(0);
    await waitFor(
      () => received.some((r) => r.path === '/v1/traces') && received.some((r) => r.path === '/v1/metrics'),
      {
        what: 'OTLP exports',
      },
    );
    const traces = received
      .filter((r) => r.path === '/v1/traces')
      .map((r) => r.body)
      .join('');
    expect(traces).toContain('fixture-span');
    expect(traces).toContain('traced-fixture');
    expect(traces).toContain('9.9.9');
    const metrics = received
      .filter((r) => r.path === '/v1/metrics')
      .map((r) => r.body)
      .join('');
    expect(metrics).toContain('flotilla_jobs');
    // /metrics works alongside the push.
    expect(proc.stdout()).toMatch(/^flotilla_jobs_total\{role="fixture",outcome="completed"[^}]*\} 1$/m);
  });

  it('serves /metrics without a collector', async () => {
    const proc = run({});
    expect(await proc.exited).toBe(0);
    expect(proc.stdout()).toMatch(/^flotilla_jobs_total\{role="fixture",outcome="completed"[^}]*\} 1$/m);
    expect(proc.stdout()).toContain('service_name="traced-fixture"');
    expect(proc.stderr()).toBe('');
  });
});
