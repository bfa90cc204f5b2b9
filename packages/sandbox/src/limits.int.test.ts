// Runs the real sandbox service (dist/main.js) on real python3 and node: wall-time kills, rlimits,
// PID namespaces and output caps are the kernel's and the launcher's doing, which only real
// processes show. The fork bomb and the memory bombs are safe here because the limits under test
// hold them (a process limit in a PID namespace of its own, a data-segment limit, a 2 s wall time).
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from './testing/service.test.helpers.js';

const OUTPUT_CAP = 4096;
let sandbox: RunningSandbox;

beforeAll(async () => {
  sandbox = await startSandbox(
    { name: 'limits', isolation: 'auto' },
    {
      SANDBOX_MAX_OUTPUT_BYTES: String(OUTPUT_CAP),
      SANDBOX_MAX_TIMEOUT_MS: '5000',
      SANDBOX_MAX_OUT_FILES_BYTES: '1024',
    },
  );
});

afterAll(async () => {
  await sandbox?.stop();
});

/** Host processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

describe('a run over its limits', () => {
  it('is killed at the wall-time limit with timedOut, and the server stays ready meanwhile', async () => {
    const running = sandbox.run({
      language: 'python',
      code: 'print("spinning", flush=True)\nwhile True: pass',
      timeoutMs: 1500,
    });
    // The service's event loop is not the run's: probes answer while the run spins.
    expect(await sandbox.ready()).toBe(true);
    const { status, body } = await running;
    expect(status).toBe(200);
    expect(body).toMatchObject({ timedOut: true, memoryExceeded: false, exitCode: 137, stdout: 'spinning\n' });
    expect(await sandbox.ready()).toBe(true);
    // Control: a program that ends in time is not flagged.
    const ok = await sandbox.run({ language: 'javascript', code: 'console.log(6 * 7)', timeoutMs: 1500 });
    expect(ok.body).toMatchObject({ stdout: '42\n', exitCode: 0, timedOut: false });
  });

  it('stops a python memory bomb with memoryExceeded', async () => {
    const { body } = await sandbox.run({
      language: 'python',
      code: 'a = []\nwhile True: a.append(bytearray(10**7))',
      memoryMb: 64,
    });
    expect(body).toMatchObject({ memoryExceeded: true, timedOut: false });
    expect(body.exitCode).not.toBe(0);
    expect(body.stderr).toContain('MemoryError');
  });

  it('stops a javascript memory bomb with memoryExceeded', async () => {
    const { body } = await sandbox.run({
      language: 'javascript',
      code: 'const a = []; for (;;) a.push(Buffer.alloc(1e7, 1));',
      memoryMb: 96,
    });
    expect(body).toMatchObject({ memoryExceeded: true, timedOut: false });
    expect(body.exitCode).not.toBe(0);
  });

  it('contains a fork bomb: the run ends, none of its processes survive, the server is unharmed', async () => {
    // main.py re-executes itself under a unique file name, so every process of the bomb carries
    // the marker in its command line, where the host can look for it.
    const marker = `bomb-${randomUUID().slice(0, 8)}`;
    const running = sandbox.run({
      language: 'python',
      code: `import os, sys\nos.execv(sys.executable, [sys.executable, "-u", "${marker}.py"])`,
      files: {
        [`${marker}.py`]:
          'import os\nprint("forking", flush=True)\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n',
      },
      timeoutMs: 2000,
    });
    // Control: while it runs, the host does see the bomb's processes by their marker.
    await waitFor(() => processesWith(marker).length > 0, { what: 'the fork bomb running', timeoutMs: 10_000 });
    const { status, body } = await running;
    expect(status).toBe(200);
    expect(body).toMatchObject({ timedOut: true, stdout: 'forking\n' });
    expect(processesWith(marker)).toEqual([]);
    expect(await sandbox.ready()).toBe(true);
    const after = await sandbox.run({ language: 'python', code: 'print("still here")' });
    expect(after.body).toMatchObject({ stdout: 'still here\n', exitCode: 0 });
  });

  it('caps an output flood and flags it', async () => {
    const { body } = await sandbox.run({ language: 'python', code: 'while True: print("x" * 1000)' });
    expect(body.outputTruncated).toBe(true);
    expect(body.timedOut).toBe(false);
    expect(Buffer.byteLength(body.stdout)).toBeLessThanOrEqual(OUTPUT_CAP);
    expect(body.stdout.length).toBeGreaterThan(0);
    // Control: output under the cap is whole and not flagged.
    const small = await sandbox.run({
      language: 'javascript',
      code: 'console.error("e".repeat(100)); console.log("o")',
    });
    expect(small.body).toMatchObject({ stdout: 'o\n', stderr: `${'e'.repeat(100)}\n`, outputTruncated: false });
  });
});

describe('a run within its limits', () => {
  it('reads its stdin and input files and returns what it wrote to out/', async () => {
    const { body } = await sandbox.run({
      language: 'python',
      code: [
        'import os, sys',
        'data = sys.stdin.read()',
        'os.makedirs("out/sub", exist_ok=True)',
        'open("out/upper.txt", "w").write(data.upper())',
        'open("out/sub/input.txt", "w").write(open("in/data.txt").read())',
        'os.symlink("/etc/passwd", "out/link")',
        'print("done")',
      ].join('\n'),
      stdin: 'hello',
      files: { 'in/data.txt': 'from a file' },
    });
    expect(body).toMatchObject({ exitCode: 0, stdout: 'done\n', outputTruncated: false });
    // Regular files only: the symlink is not followed or returned.
    expect(body.files).toEqual({ 'upper.txt': 'HELLO', 'sub/input.txt': 'from a file' });
  });

  it('returns out/ files up to the cap and flags the rest', async () => {
    const { body } = await sandbox.run({
      language: 'javascript',
      code: `const fs = require('fs'); fs.mkdirSync('out'); fs.writeFileSync('out/small.txt', 'ok'); fs.writeFileSync('out/big.txt', 'b'.repeat(5000));`,
    });
    expect(body.exitCode).toBe(0);
    expect(body.files).toEqual({ 'small.txt': 'ok' });
    expect(body.outputTruncated).toBe(true);
  });
});

describe('shutdown', () => {
  it('on SIGTERM lets the run in flight finish and answer, then exits 0', async () => {
    const own = await startSandbox({ name: 'shutdown', isolation: 'auto' });
    try {
      const marker = `drain-${randomUUID().slice(0, 8)}`;
      const running = own.run({
        language: 'python',
        code: `import os, sys\nos.execv(sys.executable, [sys.executable, "-u", "${marker}.py"])`,
        files: { [`${marker}.py`]: 'import time\ntime.sleep(1.5)\nprint("finished")' },
      });
      await waitFor(() => processesWith(marker).length > 0, { what: 'the run in flight' });
      own.proc.signal('SIGTERM');
      const { status, body } = await running;
      expect(status).toBe(200);
      expect(body).toMatchObject({ stdout: 'finished\n', exitCode: 0 });
      expect(await own.proc.exited).toBe(0);
      expect(own.proc.jsonLines().some((l) => l.msg === 'shutdown complete' && l.clean === true)).toBe(true);
    } finally {
      await own.stop();
    }
  });
});
