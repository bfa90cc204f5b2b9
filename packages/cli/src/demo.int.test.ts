// Runs `flotilla demo` as a user would: a real process that starts Redis, Chroma and five services,
// so the checks are on what a person sees and on what is left running afterwards.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type RunningProcess, startProcess, waitFor } from '@flotilla/test-utils';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Child processes of `pid` (the demo's services, Redis, Chroma). */
function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Waits for the mesh to come up; a demo that exits first fails the test with its stderr. */
async function meshUp(demo: RunningProcess) {
  let exit: number | NodeJS.Signals | undefined;
  void demo.exited.then((code) => {
    exit = code;
  });
  await waitFor(
    () => {
      if (exit !== undefined) throw new Error(`demo exited with ${exit}: ${demo.stderr().slice(-2000)}`);
      return /orchestrator on /.test(demo.stdout());
    },
    { what: 'mesh up', timeoutMs: 60_000 },
  );
}

/** The ones still alive: a leaked child would be re-parented, so check the pids themselves. */
const alive = (pids: number[]) =>
  pids.filter((p) => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  });

describe('flotilla demo', () => {
  it('answers the sample goal, shows progress and the trace, and leaves nothing running', async () => {
    // Its own Redis and Chroma, as on a machine with nothing running.
    const demo = startProcess(process.execPath, [cli, 'demo'], {
      env: { REDIS_URL: undefined, CHROMA_URL: undefined },
    });
    await meshUp(demo);
    const started = children(demo.child.pid as number);
    expect(started.length).toBeGreaterThanOrEqual(8); // redis, chroma, sandbox, orchestrator, 3 researchers, coder
    const code = await demo.exited;
    const out = demo.stdout();
    expect(code, demo.stderr()).toBe(0);
    // Every worker package, found by its package.json, at its devReplicas.
    expect(out).toMatch(/workers +coder ×1, researcher ×3/);
    // The sandbox beside them, on loopback; its token is never printed.
    expect(out).toMatch(/sandbox +http:\/\/127\.0\.0\.1:\d+ /);
    expect(out).toMatch(/planned +3 subtasks: s1→researcher, s2→researcher, s3→coder/);
    expect(out).toMatch(/started +s1 \(researcher\) on researcher-\d/);
    // The offline model's program ran in the sandbox: the coder finishes, and no subtask fell short.
    expect(out).toMatch(/finished +s3 on coder-\d: finish /);
    expect(out).toMatch(/status completed · trace id [0-9a-f]{32}/);
    expect(out).toMatch(/trace +\d+ spans from coder, orchestrator, researcher/);
    expect(alive(started)).toEqual([]);
  });

  it('shuts everything down on Ctrl-C', async () => {
    const demo = startProcess(process.execPath, [cli, 'demo'], {
      env: { REDIS_URL: undefined, CHROMA_URL: undefined },
    });
    await meshUp(demo);
    const started = children(demo.child.pid as number);
    expect(started.length).toBeGreaterThanOrEqual(7);
    demo.signal('SIGINT');
    expect(await demo.exited).toBe(130);
    expect(demo.stdout()).toContain('stopping…');
    expect(alive(started)).toEqual([]);
  });
});
