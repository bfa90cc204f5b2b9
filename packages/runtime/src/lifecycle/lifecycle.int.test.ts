// Spawns real node processes: signal handling and exit codes only exist in a real process.
// Runs the built fixture (build first: npx tsc -b packages/runtime/tsconfig.json).
import { fileURLToPath } from 'node:url';
import { type RunningProcess, startProcess, stopAll, waitFor } from '@flotilla/test-utils';
import { afterEach, describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('../../dist/lifecycle/fixtures/service.js', import.meta.url));
let procs: RunningProcess[] = [];

afterEach(async () => {
  await stopAll(procs, 1_000);
  procs = [];
});

async function startService(env: Record<string, string> = {}) {
  const proc = startProcess(process.execPath, [fixture], { env });
  procs.push(proc);
  await waitFor(() => proc.jsonLines().some((l) => l.msg === 'ready'), { what: 'fixture ready' });
  return proc;
}

const phasesRun = (proc: RunningProcess) =>
  proc
    .jsonLines()
    .filter((l) => l.msg === 'step ran')
    .map((l) => l.phase);

describe('signal handling', () => {
  it('runs every step in phase order on SIGTERM and exits 0', async () => {
    const proc = await startService();
    proc.signal('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(phasesRun(proc)).toEqual(['not-ready', 'stop-intake', 'drain', 'close', 'flush']);
    expect(proc.jsonLines().find((l) => l.msg === 'shutdown complete')).toMatchObject({
      reason: 'SIGTERM',
      clean: true,
    });
  });

  it('forces exit 1 on a second SIGTERM while draining', async () => {
    const proc = await startService({ DRAIN_HANGS: '1', GRACE_MS: '600000' });
    proc.signal('SIGTERM');
    await waitFor(() => phasesRun(proc).includes('drain'), { what: 'drain started' });
    proc.signal('SIGTERM');
    expect(await proc.exited).toBe(1);
    expect(phasesRun(proc)).not.toContain('close');
  });

  it('moves past a drain that overruns its grace period, then exits 1', async () => {
    const proc = await startService({ DRAIN_HANGS: '1', GRACE_MS: '200' });
    proc.signal('SIGINT');
    expect(await proc.exited).toBe(1);
    expect(phasesRun(proc)).toEqual(['not-ready', 'stop-intake', 'drain', 'close', 'flush']);
    expect(proc.jsonLines().find((l) => l.msg === 'shutdown complete')).toMatchObject({
      clean: false,
      timedOut: ['step-drain'],
    });
  });
});
