import { dirname, posix } from 'node:path';
import type { SandboxLanguage } from '@flotilla/contracts';

/**
 * How runs are isolated (see the package README):
 * - `userns`: bubblewrap in a new user namespace (uid 1000 inside, no capabilities, no further user
 *   namespaces). Needs unprivileged user namespaces; a root service first drops to the slot's uid.
 * - `root`: bubblewrap as root without a user namespace, then setpriv drops the program to the
 *   slot's uid with no capabilities. For root services on kernels without unprivileged user namespaces.
 * - `gvisor`: `userns` without a network namespace of the run's own. gVisor's network stack cannot
 *   configure a new namespace's loopback the way bubblewrap does, so under gVisor the run stays in
 *   the container's (gVisor's own) network namespace, and the seccomp filter's socket rule (AF_UNIX
 *   only) is what keeps it off the network; the mode refuses to exist without that filter.
 */
export type IsolationMode = 'userns' | 'root' | 'gvisor';

/**
 * What each mode asks of bubblewrap and prlimit.
 * - `disableUserns` (no user namespaces inside the run's) needs /proc/sys/user/max_user_namespaces,
 *   which gVisor lacks; the seccomp filter denies them anyway.
 * - `addressSpace`: gVisor counts only brk against RLIMIT_DATA, not mmap (where python and node
 *   put large allocations), so there memory is capped by RLIMIT_AS as well: `memoryMb` plus what
 *   the interpreter reserves without using (AS_RESERVED).
 */
const MODES: Record<
  IsolationMode,
  { userNamespace: boolean; networkNamespace: boolean; disableUserns: boolean; addressSpace: boolean }
> = {
  userns: { userNamespace: true, networkNamespace: true, disableUserns: true, addressSpace: false },
  root: { userNamespace: false, networkNamespace: true, disableUserns: false, addressSpace: false },
  gvisor: { userNamespace: true, networkNamespace: false, disableUserns: false, addressSpace: true },
};
/**
 * Address space an interpreter maps but does not use, in MiB, with headroom: measured under gVisor
 * (VmSize at start) as 21 MiB for python 3.11 and 456 MiB for node 18 (V8's reserved ranges).
 */
const AS_RESERVED: Record<SandboxLanguage, number> = { python: 64, javascript: 640 };
/** Whether runs in this mode get an empty network namespace (beside the seccomp socket rule). */
export const networkNamespace = (mode: IsolationMode) => MODES[mode].networkNamespace;

/** Where the host's tools and interpreters are; found once at start (platform.ts). */
export interface Platform {
  mode: IsolationMode;
  /** True when the service runs as root: runs then drop to a uid of their own. */
  root: boolean;
  /** First uid of the run slots (root services only). */
  uidBase: number;
  tools: { bwrap: string; prlimit: string; setpriv: string; choom: string; sh: string; tar: string };
  /** Absolute, symlink-free interpreter paths. */
  interpreters: Record<SandboxLanguage, string>;
  /** The run's seccomp filter (seccomp.ts), unless this architecture has no table. */
  seccomp?: Buffer;
  /** Host directories bound read-only at the same path: /usr, interpreters' prefixes outside it. */
  readOnly: string[];
  /** Top-level merged-/usr entries (`/bin` -> `usr/bin`) recreated as symlinks, else bound read-only. */
  topLevel: { path: string; symlink?: string }[];
}

/** Limits of one run, already clamped to the service's maxima. */
export interface RunLimits {
  timeoutMs: number;
  memoryMb: number;
  procs: number;
  openFiles: number;
  diskMb: number;
  fileBytes: number;
}

/** A file placed in the run's directory before it starts. */
export interface InputFile {
  /** Relative to the run's directory (already validated: no `..`, no leading `/`). */
  path: string;
  content: Buffer;
}

/** A run's launch: argv, the launcher's own environment, and what to write on fds 5, 6, ... */
export interface SandboxCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  /** What to write on fd 5 onwards, in order: the seccomp filter (if any), then the input files. */
  inputs: Buffer[];
}

/** The run's directory and scratch space inside the sandbox. */
export const WORK_DIR = '/work';
/** Where the program's file lies in the run's directory. */
export const MAIN_FILE: Record<SandboxLanguage, string> = { python: 'main.py', javascript: 'main.js' };
/** The uid and gid a run has inside its user namespace (userns mode). */
const INNER_ID = '1000';
/** fd on which the wrapper writes a tar of out/ after the program ended. */
export const OUT_FD = 3;
/**
 * fd on which bubblewrap reports the sandbox's PID 1 (`{"child-pid": n}`) once it exists and the
 * exit status at the end; the sandbox itself never sees it.
 */
export const STATUS_FD = 4;
/** The first fd bubblewrap reads data from: the seccomp filter, then the input files. */
const FIRST_DATA_FD = 5;

/** The run's whole environment: nothing of the service's (no tokens, no *_FILE paths). */
export const RUN_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: WORK_DIR,
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
};

/** Files from /etc the interpreters and the dynamic loader read; the rest of the host's /etc stays out. */
const ETC_FILES = ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/alternatives', '/etc/localtime'];

// Runs inside the sandbox as the program's parent. The program gets no fd 3 (the out/ channel);
// after it ends, tar sends out/ (regular files; the reader skips links and devices) on fd 3. $?
// of a program killed by signal n is 128+n, as in any shell.
const wrapper = (tar: string) =>
  [
    'cd /work || exit 125',
    '"$@" 3>&-',
    'rc=$?',
    `if [ -d out ] && [ ! -L out ]; then ${tar} -C out -cf - . >&3 2>/dev/null; fi`,
    'exit $rc',
  ].join('\n');

function interpreterArgs(language: SandboxLanguage, interpreter: string, limits: RunLimits): string[] {
  if (language === 'python') {
    // -B: no .pyc files; -u: unbuffered, so what a killed run printed is not lost; -E -s: no
    // PYTHON* variables, no user site-packages.
    return [interpreter, '-B', '-u', '-E', '-s', MAIN_FILE.python];
  }
  // V8 gets a heap limit below the process's data limit, so a runaway heap ends in V8's own "heap
  // out of memory" rather than an allocation failure somewhere in C++; a fixed worker pool keeps
  // its threads within the process limit on hosts with many cores.
  const heapMb = Math.max(16, Math.floor(limits.memoryMb * 0.75));
  return [interpreter, `--max-old-space-size=${heapMb}`, '--v8-pool-size=2', MAIN_FILE.javascript];
}

/**
 * The command line of one run: [choom] [setpriv] bwrap <namespaces, mounts> -- prlimit <limits> --
 * [setpriv] sh -c WRAPPER <interpreter> main.*. Pure, so the unit tests read it.
 */
export function buildCommand(
  platform: Platform,
  run: { language: SandboxLanguage; limits: RunLimits; slot: number; files: InputFile[] },
): SandboxCommand {
  const { tools, mode, root } = platform;
  const { limits } = run;
  const uid = String(platform.uidBase + run.slot);
  // In root mode bubblewrap creates files as root: the program (another uid) must be able to write them.
  const rootOwned = mode === 'root';

  const bwrap: string[] = [
    ...(MODES[mode].userNamespace ? ['--unshare-user', '--uid', INNER_ID, '--gid', INNER_ID] : []),
    ...(MODES[mode].disableUserns ? ['--disable-userns'] : []),
    ...(MODES[mode].networkNamespace ? ['--unshare-net'] : []),
    ...['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'],
    ...['--hostname', 'sandbox', '--die-with-parent', '--new-session', '--clearenv'],
    ...['--json-status-fd', String(STATUS_FD)],
    ...Object.entries(RUN_ENV).flatMap(([k, v]) => ['--setenv', k, v]),
    // Directories bubblewrap creates are 0700 and root's in root mode; the program must traverse
    // them: /etc, and the parents of an interpreter prefix such as /opt/python/3.12.
    ...(rootOwned ? parentsOf(['/etc/x', ...platform.readOnly]).flatMap((d) => ['--perms', '0755', '--dir', d]) : []),
    ...platform.readOnly.flatMap((dir) => ['--ro-bind', dir, dir]),
    ...platform.topLevel.flatMap((t) =>
      t.symlink !== undefined ? ['--symlink', t.symlink, t.path] : ['--ro-bind', t.path, t.path],
    ),
    ...ETC_FILES.flatMap((f) => ['--ro-bind-try', f, f]),
    ...['--proc', '/proc', '--dev', '/dev'],
    // /tmp and /dev/shm (python's multiprocessing needs it) are the run's own, capped like /work.
    ...['--perms', '1777', '--size', String(limits.diskMb * 1024 * 1024), '--tmpfs', '/tmp'],
    ...['--perms', '1777', '--size', String(limits.diskMb * 1024 * 1024), '--tmpfs', '/dev/shm'],
    ...['--perms', rootOwned ? '0777' : '0755', '--size', String(limits.diskMb * 1024 * 1024), '--tmpfs', WORK_DIR],
  ];

  const dirs = new Set<string>();
  for (const f of run.files) {
    for (let d = posix.dirname(f.path); d !== '.' && !dirs.has(d); d = posix.dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort()) bwrap.push(...(rootOwned ? ['--perms', '0777'] : []), '--dir', `${WORK_DIR}/${d}`);
  const inputs: Buffer[] = [];
  if (platform.seccomp) {
    bwrap.push('--seccomp', String(FIRST_DATA_FD + inputs.length));
    inputs.push(platform.seccomp);
  }
  for (const f of run.files) {
    bwrap.push(
      '--perms',
      rootOwned ? '0666' : '0644',
      '--file',
      String(FIRST_DATA_FD + inputs.length),
      `${WORK_DIR}/${f.path}`,
    );
    inputs.push(f.content);
  }
  // The root and /dev are bubblewrap's own tmpfs, writable and uncapped until made read-only.
  bwrap.push('--remount-ro', '/dev', '--remount-ro', '/', '--chdir', WORK_DIR);
  if (mode === 'root') bwrap.push('--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID');

  const cpuSeconds = Math.max(1, Math.ceil(limits.timeoutMs / 1000));
  const memoryBytes = limits.memoryMb * 1024 * 1024;
  const prlimit = [
    tools.prlimit,
    `--cpu=${cpuSeconds}:${cpuSeconds + 1}`,
    `--data=${memoryBytes}`,
    ...(MODES[mode].addressSpace ? [`--as=${memoryBytes + AS_RESERVED[run.language] * 1024 * 1024}`] : []),
    `--nproc=${limits.procs}`,
    `--nofile=${limits.openFiles}`,
    `--fsize=${limits.fileBytes}`,
    // No core files: they would fill the run's disk, or reach a host's core_pattern helper.
    '--core=0',
    // Memory a process may lock. (POSIX message queues, whose memory RLIMIT_MSGQUEUE would cap, are
    // denied by seccomp: gVisor refuses to set that limit.)
    '--memlock=0',
    '--',
  ];
  const dropInside =
    mode === 'root'
      ? [
          tools.setpriv,
          `--reuid=${uid}`,
          `--regid=${uid}`,
          '--clear-groups',
          '--inh-caps=-all',
          '--bounding-set=-all',
          '--no-new-privs',
          '--',
        ]
      : [];
  const shell = [tools.sh, '-c', wrapper(tools.tar), 'sandbox'];
  const program = interpreterArgs(run.language, platform.interpreters[run.language], limits);

  // Outside: the whole tree is the first the kernel's OOM killer picks under memory pressure, not
  // the service; a root service enters an unprivileged user namespace as the slot's own uid.
  const outside = [
    tools.choom,
    '-n',
    '1000',
    '--',
    ...(MODES[mode].userNamespace && root
      ? [tools.setpriv, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--']
      : []),
    tools.bwrap,
  ];
  const [file, ...rest] = outside as [string, ...string[]];
  return {
    file,
    args: [...rest, ...bwrap, '--', ...prlimit, ...dropInside, ...shell, ...program],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    inputs,
  };
}

/** Every ancestor directory of the paths, parents first, without `/`. */
function parentsOf(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/').filter(Boolean).slice(0, -1);
    parts.forEach((_, i) => {
      dirs.add(`/${parts.slice(0, i + 1).join('/')}`);
    });
  }
  return [...dirs];
}

/** The read-only binds an interpreter outside /usr needs: its installation prefix. */
export function interpreterPrefix(realPath: string): string | undefined {
  if (/^\/(usr|bin|sbin|lib\w*)\//.test(realPath)) return undefined;
  return dirname(dirname(realPath));
}
