import { describe, expect, it } from 'vitest';
import { buildCommand, type Platform, RUN_ENV, type RunLimits } from './command.js';

const platform = (over: Partial<Platform> = {}): Platform => ({
  mode: 'userns',
  root: true,
  uidBase: 2_000_000,
  tools: {
    bwrap: '/usr/bin/bwrap',
    prlimit: '/usr/bin/prlimit',
    setpriv: '/usr/bin/setpriv',
    choom: '/usr/bin/choom',
    sh: '/usr/bin/sh',
    tar: '/usr/bin/tar',
  },
  interpreters: { python: '/usr/bin/python3.11', javascript: '/opt/node/bin/node' },
  readOnly: ['/usr', '/opt/node'],
  topLevel: [{ path: '/bin', symlink: 'usr/bin' }, { path: '/lib64' }],
  ...over,
});
const limits: RunLimits = { timeoutMs: 2500, memoryMb: 128, procs: 32, openFiles: 64, diskMb: 8, fileBytes: 1024 };
const files = [
  { path: 'main.py', content: Buffer.from('print(1)') },
  { path: 'data/in/x.txt', content: Buffer.from('x') },
];

/** The values that follow each occurrence of `flag`. */
const after = (args: string[], flag: string, n = 1) =>
  args.flatMap((a, i) => (a === flag ? [args.slice(i + 1, i + 1 + n).join(' ')] : []));

describe('buildCommand', () => {
  it('gives the run only its own environment: nothing of the service, no token', () => {
    const cmd = buildCommand(platform(), { language: 'python', limits, slot: 0, files });
    expect(cmd.args).toContain('--clearenv');
    expect(Object.fromEntries(after(cmd.args, '--setenv', 2).map((kv) => kv.split(' ')))).toEqual(RUN_ENV);
    expect(cmd.env).toEqual({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });
    expect(JSON.stringify(cmd)).not.toMatch(/TOKEN|_FILE/);
  });

  it('puts the run in its own pid, network, ipc and uts namespaces, dying with the service', () => {
    const { args } = buildCommand(platform(), { language: 'python', limits, slot: 0, files });
    for (const flag of [
      '--unshare-pid',
      '--unshare-net',
      '--unshare-ipc',
      '--unshare-uts',
      '--die-with-parent',
      '--new-session',
    ])
      expect(args).toContain(flag);
  });

  it('binds only system directories and interpreters read-only, and the run dirs as capped tmpfs', () => {
    const { args } = buildCommand(platform(), { language: 'javascript', limits, slot: 0, files });
    expect(after(args, '--bind')).toEqual([]);
    expect(after(args, '--ro-bind', 2)).toEqual(['/usr /usr', '/opt/node /opt/node', '/lib64 /lib64']);
    expect(after(args, '--ro-bind-try', 2).every((b) => b.startsWith('/etc/'))).toBe(true);
    expect(after(args, '--tmpfs')).toEqual(['/tmp', '/dev/shm', '/work']);
    expect(after(args, '--size')).toEqual(Array(3).fill(String(8 * 1024 * 1024)));
    expect(after(args, '--remount-ro')).toEqual(['/dev', '/']);
  });

  it('copies input files from fd 5 on, creating their directories', () => {
    const cmd = buildCommand(platform(), { language: 'python', limits, slot: 0, files });
    expect(after(cmd.args, '--file', 2)).toEqual(['5 /work/main.py', '6 /work/data/in/x.txt']);
    expect(after(cmd.args, '--dir')).toEqual(['/work/data', '/work/data/in']);
    expect(cmd.inputs.map(String)).toEqual(['print(1)', 'x']);
  });

  it('hands bubblewrap the seccomp filter first when there is one, the files after it', () => {
    const filter = Buffer.from('filter');
    const cmd = buildCommand(platform({ seccomp: filter }), { language: 'python', limits, slot: 0, files });
    expect(after(cmd.args, '--seccomp')).toEqual(['5']);
    expect(after(cmd.args, '--file', 2)).toEqual(['6 /work/main.py', '7 /work/data/in/x.txt']);
    expect(cmd.inputs[0]).toBe(filter);
  });

  it('sets every limit on the program', () => {
    const { args } = buildCommand(platform(), { language: 'python', limits, slot: 0, files });
    for (const limit of [
      '--cpu=3:4',
      `--data=${128 * 1024 * 1024}`,
      '--nproc=32',
      '--nofile=64',
      '--fsize=1024',
      '--core=0',
    ])
      expect(args).toContain(limit);
    expect(args.some((a) => a.startsWith('--as='))).toBe(false);
  });

  it('gvisor: a user namespace as in userns, but no network namespace of its own and no --disable-userns', () => {
    const { args } = buildCommand(platform({ mode: 'gvisor' }), { language: 'python', limits, slot: 3, files });
    expect(args).not.toContain('--unshare-net');
    expect(args).not.toContain('--disable-userns');
    for (const flag of ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts'])
      expect(args).toContain(flag);
    expect(args.indexOf('--reuid=2000003')).toBeLessThan(args.indexOf('/usr/bin/bwrap'));
    // gVisor does not count mmap against RLIMIT_DATA: the address space is capped too.
    expect(args).toContain(`--as=${(128 + 64) * 1024 * 1024}`);
  });

  it('userns as root: drops to the slot uid before entering the user namespace, without further namespaces', () => {
    const cmd = buildCommand(platform(), { language: 'python', limits, slot: 3, files });
    const bwrap = cmd.args.indexOf('/usr/bin/bwrap');
    expect(cmd.file).toBe('/usr/bin/choom');
    expect(cmd.args.indexOf('--reuid=2000003')).toBeLessThan(bwrap);
    expect(cmd.args).toContain('--disable-userns');
    expect(cmd.args).not.toContain('--cap-add');
  });

  it('userns as non-root: no uid change at all (it has none to give)', () => {
    const cmd = buildCommand(platform({ root: false }), { language: 'python', limits, slot: 3, files });
    expect(cmd.args.some((a) => a.startsWith('--reuid'))).toBe(false);
    expect(cmd.args).toContain('--unshare-user');
  });

  it('root mode: bubblewrap without a user namespace, then setpriv drops the program to the slot uid with nothing kept', () => {
    const { args } = buildCommand(platform({ mode: 'root' }), { language: 'python', limits, slot: 1, files });
    expect(args).not.toContain('--unshare-user');
    const sep = args.indexOf('--');
    const setpriv = args.lastIndexOf('/usr/bin/setpriv');
    expect(setpriv).toBeGreaterThan(args.indexOf('/usr/bin/bwrap'));
    expect(args.slice(setpriv, setpriv + 8)).toEqual([
      '/usr/bin/setpriv',
      '--reuid=2000001',
      '--regid=2000001',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
    ]);
    expect(after(args, '--cap-add')).toEqual(['CAP_SETUID', 'CAP_SETGID']);
    // The program's uid must traverse the directories bubblewrap creates as root: /etc, /opt.
    expect(after(args, '--dir').slice(0, 2)).toEqual(['/etc', '/opt']);
    expect(after(args, '--perms').slice(0, 2)).toEqual(['0755', '0755']);
    expect(sep).toBeGreaterThan(0);
  });

  it('runs the interpreter last, node with a heap below the data limit', () => {
    const { args } = buildCommand(platform(), { language: 'javascript', limits, slot: 0, files: [] });
    expect(args.slice(-4)).toEqual(['/opt/node/bin/node', '--max-old-space-size=96', '--v8-pool-size=2', 'main.js']);
  });
});
