// Hostile programs against the real sandbox service (dist/main.js), once per isolation setting this
// host can run: a user namespace, root without one, and the service itself as a non-root uid as in
// its image. What stops them is the kernel (namespaces, uids, mounts), so only real processes on a
// real kernel can show it. Every network target is on loopback and belongs to this test: a Redis
// the test run started, the sandbox's own port, and a listener this file opens.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisReachable, testServices, waitFor } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, settings, startSandbox } from './testing/service.test.helpers.js';

const SECRET = `not-for-runs-${process.pid}-${Date.now()}`;
const { redisUrl } = testServices();

/** Runs python and parses the JSON line it prints last. */
async function report(sandbox: RunningSandbox, code: string, extra: Record<string, unknown> = {}) {
  const { status, body } = await sandbox.run({ language: 'python', code, ...extra });
  expect(status).toBe(200);
  expect(body.stderr).toBe('');
  const last = body.stdout.trim().split('\n').at(-1) ?? '';
  return { body, result: JSON.parse(last) as Record<string, unknown> };
}

describe.each(settings())('isolation: $name', (setting) => {
  let sandbox: RunningSandbox;
  let hostDir: string;

  beforeAll(async () => {
    // The service gets a secret of its own in its environment, and its token file open on fd 100
    // (a descriptor it inherits and must not hand on).
    sandbox = await startSandbox(setting, { FLOTILLA_TEST_SECRET: SECRET }, { inheritTokenFd: 100 });
    hostDir = mkdtempSync(join(tmpdir(), 'flotilla-sandbox-host-'));
    chmodSync(hostDir, 0o777);
  });

  afterAll(async () => {
    await sandbox?.stop();
    if (hostDir) rmSync(hostDir, { recursive: true, force: true });
  });

  it('gives the run an environment with no secret, and no way to read the token or the service environ', async () => {
    // Control: the token file exists where the service reads it, and holds the token.
    expect(readFileSync(sandbox.tokenFile, 'utf8').trim()).toBe(sandbox.token);
    const servicePid = sandbox.proc.child.pid;
    const { body, result } = await report(
      sandbox,
      `
import json, os
def attempt(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("latin1")
    except Exception as e:
        return "error: " + type(e).__name__
environs = {}
for pid in os.listdir("/proc"):
    if pid.isdigit():
        environs[pid] = attempt(f"/proc/{pid}/environ") + attempt(f"/proc/{pid}/cmdline")
fds = {}
for fd in range(3, 256):
    try:
        fds[fd] = os.read(fd, 4096).decode("latin1")
    except OSError as e:
        pass
print(json.dumps({
    "env": dict(os.environ),
    "token_file": attempt(${JSON.stringify(sandbox.tokenFile)}),
    "init": attempt("/proc/1/environ"),
    "parent": attempt(f"/proc/{os.getppid()}/environ"),
    "service": attempt("/proc/${servicePid}/environ"),
    "environs": environs,
    "fds": fds,
}))
`,
    );
    const text = JSON.stringify(body);
    expect(text).not.toContain(sandbox.token);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('SANDBOX_TOKEN');
    expect(Object.keys(result.env as object).sort()).toEqual(['HOME', 'LANG', 'OLDPWD', 'PATH', 'PWD', 'TMPDIR']);
    expect(result.token_file).toMatch(/^error: /);
    expect(result.fds).toEqual({});
  });

  it('fails to write outside its own directories, and leaves the host untouched', async () => {
    const { result } = await report(
      sandbox,
      `
import json
def write(path):
    try:
        with open(path, "w") as f:
            f.write("escaped")
        return "written"
    except Exception as e:
        return type(e).__name__
targets = ["/escaped", "/etc/escaped", "/usr/escaped", "/proc/escaped", "/dev/escaped", "/bin/escaped", ${JSON.stringify(join(hostDir, 'escaped'))}]
print(json.dumps({"outside": {t: write(t) for t in targets}, "work": write("/work/mine.txt"), "tmp": write("/tmp/mine.txt"), "shm": write("/dev/shm/mine")}))
`,
    );
    for (const [target, outcome] of Object.entries(result.outside as Record<string, string>)) {
      expect(outcome, target).not.toBe('written');
    }
    // Control: its own directory, /tmp and /dev/shm are writable.
    expect(result).toMatchObject({ work: 'written', tmp: 'written', shm: 'written' });
    expect(readdirSync(hostDir)).toEqual([]);
  });

  it('starts every run with a fresh directory: a file from one run is gone in the next', async () => {
    const first = await report(
      sandbox,
      'import json\nopen("/work/left.txt", "w").write("x")\nopen("/tmp/left.txt", "w").write("x")\nopen("/dev/shm/left", "w").write("x")\nprint(json.dumps({"there": open("/work/left.txt").read()}))',
    );
    expect(first.result.there).toBe('x');
    const second = await report(
      sandbox,
      'import json, os\nprint(json.dumps({"work": os.path.exists("/work/left.txt"), "tmp": os.path.exists("/tmp/left.txt"), "shm": os.path.exists("/dev/shm/left"), "ls": sorted(os.listdir("/work"))}))',
    );
    expect(second.result).toEqual({ work: false, tmp: false, shm: false, ls: ['main.py'] });
  });

  it('cannot reach Redis, the sandbox itself or a loopback listener, and has no route out', async () => {
    const redisPort = Number(new URL(redisUrl).port);
    let connections = 0;
    const listener: Server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const listenerPort = (listener.address() as { port: number }).port;
    try {
      // Control: from the host, all three answer.
      expect(await redisReachable(redisUrl)).toBe(true);
      expect(await sandbox.ready()).toBe(true);
      await new Promise<void>((resolve, reject) => {
        const socket = connect(listenerPort, '127.0.0.1', () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      });
      await waitFor(() => connections === 1, { what: 'the control connection' });
      const { result } = await report(
        sandbox,
        `
import json, socket
def dial(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "connected"
    except Exception as e:
        return type(e).__name__
print(json.dumps({
    "redis": dial(${redisPort}),
    "sandbox": dial(${sandbox.port}),
    "listener": dial(${listenerPort}),
    "unix": len(socket.socketpair()),
    "routes": open("/proc/net/route").read().strip().split("\\n")[1:],
}))
`,
      );
      // The seccomp filter refuses the inet socket itself; behind it, the run's network namespace
      // has no route. Local sockets still work (the control).
      expect(result).toEqual({
        redis: 'PermissionError',
        sandbox: 'PermissionError',
        listener: 'PermissionError',
        unix: 2,
        routes: [],
      });
      expect(connections).toBe(1);
    } finally {
      listener.close();
    }
  });

  it('cannot make namespaces, mount, trace, or reach bpf, keys, perf events or message queues; threads and children still work', async () => {
    const probe = `
import ctypes, json, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    return "ok" if getattr(libc, name)(*args) >= 0 else os.strerror(ctypes.get_errno())
def syscall(name):
    import platform
    nr = {"x86_64": {"bpf": 321, "keyctl": 250, "perf_event_open": 298}, "aarch64": {"bpf": 280, "keyctl": 219, "perf_event_open": 241}}[platform.machine()][name]
    return call("syscall", nr, 0, 0, 0, 0)
result = {
    "user namespace": call("unshare", 0x10000000),
    "network namespace": call("unshare", 0x40000000),
    "mount": call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
    "ptrace": call("ptrace", 16, os.getppid(), 0, 0),
    "bpf": syscall("bpf"),
    "keyctl": syscall("keyctl"),
    "perf_event_open": syscall("perf_event_open"),
    "mq_open": call("mq_open", b"/flotilla", 0o100 | 2, 0o600, None),
}
t = threading.Thread(target=lambda: None)
t.start()
t.join()
result["thread"] = "ok"
result["child"] = subprocess.run(["/bin/echo", "ok"], capture_output=True, text=True).stdout.strip()
print(json.dumps(result))
`;
    const { result } = await report(sandbox, probe);
    expect(result).toEqual({
      'user namespace': 'Operation not permitted',
      'network namespace': 'Operation not permitted',
      mount: 'Operation not permitted',
      ptrace: 'Operation not permitted',
      bpf: 'Operation not permitted',
      keyctl: 'Operation not permitted',
      perf_event_open: 'Operation not permitted',
      mq_open: 'Operation not permitted',
      thread: 'ok',
      child: 'ok',
    });
    // Control: on the host the same unshare call succeeds (as root, or with user namespaces on).
    // Only that call: the rest of the probe (mount, ptrace of PID 1) must never run on the host.
    const host = execFileSync(
      'python3',
      ['-c', 'import ctypes; print(ctypes.CDLL(None, use_errno=True).unshare(0x10000000))'],
      { encoding: 'utf8' },
    );
    expect(host.trim()).toBe('0');
  });

  it('sees only its own processes and cannot signal the service', async () => {
    const servicePid = sandbox.proc.child.pid;
    const { result } = await report(
      sandbox,
      `
import json, os, signal
def kill(pid):
    try:
        os.kill(pid, 0)
        return "reachable"
    except Exception as e:
        return type(e).__name__
cmds = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            cmds.append(open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[0].decode())
        except Exception:
            pass
print(json.dumps({"cmds": cmds, "service": kill(${servicePid})}))
`,
    );
    expect(result.service).not.toBe('reachable');
    // The sandbox's init, the wrapper shell, and the interpreter: nothing of the host's.
    expect((result.cmds as string[]).some((c) => c.includes('node'))).toBe(false);
    expect((result.cmds as string[]).length).toBeLessThanOrEqual(3);
    expect(existsSync(`/proc/${servicePid}`)).toBe(true);
  });
});
