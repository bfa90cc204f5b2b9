// The sandbox's escape tests again, in its container as Compose runs it (stack.test.ts calls them
// while the stack is up): under gVisor when the suite
// runs with SANDBOX_RUNTIME=runsc (scripts/test-stack's default), where every run meets gVisor's
// kernel and, in isolation mode `gvisor`, has no network namespace of its own, only the seccomp
// filter's refusal of inet sockets. packages/sandbox/src/*.int.test.ts cover the same ground on the
// host kernel, in more detail.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ContainerInfo,
  containers,
  docker,
  ipOn,
  must,
  type SandboxResult,
  sandboxRun,
  waitFor,
} from './docker.js';

const runtime = process.env.SANDBOX_RUNTIME || 'runc';
const sandboxToken = () => process.env.STACK_SANDBOX_TOKEN as string;

/** Registers the escape tests; call inside a describe of stack.test.ts. */
export function sandboxEscapeTests() {
  describe(`escapes, under ${runtime}`, () => {
    let sandbox: ContainerInfo;
    const run = (body: Record<string, unknown>) => sandboxRun(sandbox.Id, body);
    /** The last line a python run printed, as JSON. */
    const report = async (code: string) => {
      const r = await run({ language: 'python', code });
      expect(r.stderr, JSON.stringify(r)).toBe('');
      return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    };
    const ready = async () =>
      (
        await docker([
          'exec',
          sandbox.Id,
          '/usr/local/bin/node',
          '-e',
          "fetch('http://127.0.0.1:8080/readyz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(2))",
        ])
      ).code === 0;
    /** Processes in the container running a run's program or its wrapper (argument `main.py`; not the service's dist/main.js). */
    const programs = async () =>
      (
        await must(
          docker([
            'exec',
            sandbox.Id,
            '/usr/local/bin/node',
            '-e',
            "const fs=require('fs');console.log(fs.readdirSync('/proc').filter(p=>/^\\d+$/.test(p)).filter(p=>{try{const a=fs.readFileSync('/proc/'+p+'/cmdline','utf8').split('\\0');return a.includes('main.py')||a.includes('main.js')}catch{return false}}).length)",
          ]),
        )
      ).trim();

    beforeAll(async () => {
      const [c] = await containers('sandbox');
      expect(c, 'a sandbox container').toBeDefined();
      sandbox = c as ContainerInfo;
    });

    it(`runs under ${runtime}, and says which isolation mode it proved at start`, async () => {
      expect(sandbox.HostConfig.Runtime).toBe(runtime);
      const release = (await run({ language: 'python', code: 'import os; print(os.uname().release)' })).stdout.trim();
      const logs = await must(docker(['logs', sandbox.Id]));
      if (runtime === 'runsc') {
        expect(release).toMatch(/-gvisor$/);
        expect(logs).toContain('"isolation":"gvisor"');
      } else {
        expect(release).not.toMatch(/gvisor/);
        expect(logs).toContain('"isolation":"userns"');
      }
    });

    it('kills an infinite loop at its wall time and stays ready', async () => {
      const r = await run({
        language: 'python',
        code: 'print("spinning", flush=True)\nwhile True: pass',
        timeoutMs: 1500,
      });
      expect(r).toMatchObject({ timedOut: true, exitCode: 137, stdout: 'spinning\n' });
      expect(await ready()).toBe(true);
    });

    it.each([
      ['python', 'a = []\nwhile True: a.append(bytearray(10**7))'],
      ['javascript', 'const a = []; for (;;) a.push(Buffer.alloc(1e7, 1));'],
    ])('stops a %s memory bomb with memoryExceeded', async (language, code) => {
      const r = await run({ language, code, memoryMb: 96 });
      expect(r, JSON.stringify(r)).toMatchObject<Partial<SandboxResult>>({ memoryExceeded: true, timedOut: false });
      expect(r.exitCode).not.toBe(0);
    });

    it('contains a fork bomb: nothing of it survives, and the service answers the next run', async () => {
      // Control: a run in flight shows up as a process.
      const sleeper = run({ language: 'python', code: 'import time\ntime.sleep(60)', timeoutMs: 5000 });
      await waitFor('a run in flight to show as a process', async () => Number(await programs()) > 0, 10_000, 200);
      expect((await sleeper).timedOut).toBe(true);
      const r = await run({
        language: 'python',
        code: 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass',
        timeoutMs: 2000,
      });
      expect(r.exitCode).not.toBe(0);
      expect(await programs()).toBe('0');
      expect(await ready()).toBe(true);
      expect((await run({ language: 'python', code: 'print(6 * 7)' })).stdout).toBe('42\n');
    });

    it('cuts an output flood and flags it', async () => {
      const r = await run({ language: 'javascript', code: 'for (;;) process.stdout.write("x".repeat(65536));' });
      expect(r.outputTruncated).toBe(true);
    });

    it('cannot write outside its own directories; what one run leaves, the next does not find', async () => {
      const written = await report(`
import json
def write(path):
    try:
        with open(path, "w") as f:
            f.write("escaped")
        return "written"
    except Exception as e:
        return type(e).__name__
targets = ["/escaped", "/etc/escaped", "/usr/escaped", "/app/escaped", "/run/secrets/escaped", "/proc/escaped"]
open("/work/left.txt", "w").write("x")
open("/tmp/left.txt", "w").write("x")
print(json.dumps({t: write(t) for t in targets}))
`);
      for (const [target, outcome] of Object.entries(written)) expect(outcome, target).not.toBe('written');
      const next = await report(
        'import json, os\nprint(json.dumps([os.path.exists(p) for p in ("/work/left.txt", "/tmp/left.txt")]))',
      );
      expect(next).toEqual([false, false]);
    });

    it("finds no secret: not in its environment, the token file, PID 1's or its parent's environ", async () => {
      const r = await run({
        language: 'python',
        code: `
import json, os
def attempt(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("latin1")
    except Exception as e:
        return "error: " + type(e).__name__
print(json.dumps({
    "env": sorted(os.environ),
    "token_file": attempt("/run/secrets/sandbox_token"),
    "init": attempt("/proc/1/environ"),
    "parent": attempt(f"/proc/{os.getppid()}/environ"),
}))
`,
      });
      expect(r.stdout).not.toContain(sandboxToken());
      expect(r.stdout).not.toMatch(/SANDBOX_TOKEN|_FILE/);
      const result = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(result.env).toEqual(['HOME', 'LANG', 'OLDPWD', 'PATH', 'PWD', 'TMPDIR']);
      expect(result.token_file).toMatch(/^error: /);
    });

    it('cannot connect to its own API, Redis or the coder; local sockets still work (control)', async () => {
      const [redis] = await containers('redis');
      const [coder] = await containers('coder');
      const targets = [
        ['127.0.0.1', 8080],
        [ipOn(redis as ContainerInfo, 'backend'), 6379],
        [ipOn(coder as ContainerInfo, 'sandbox'), 8080],
      ];
      expect(targets.every(([host]) => typeof host === 'string' && host.length > 0)).toBe(true);
      const result = await report(`
import json, socket
def dial(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return "connected"
    except Exception as e:
        return type(e).__name__
print(json.dumps({"dials": [dial(h, p) for h, p in ${JSON.stringify(targets)}], "unix": len(socket.socketpair())}))
`);
      expect(result).toEqual({ dials: ['PermissionError', 'PermissionError', 'PermissionError'], unix: 2 });
    });
  });
}
