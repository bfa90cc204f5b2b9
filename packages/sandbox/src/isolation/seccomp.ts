/**
 * The seccomp filter every run gets (bubblewrap's --seccomp takes a compiled classic-BPF program).
 * A deny list, as Docker's and Flatpak's are: what an interpreter running a short program never
 * needs, and what opens the kernel's least-trodden code to it. Denied calls fail with EPERM, so a
 * program sees an ordinary error; clone3 fails with ENOSYS so the C library falls back to clone,
 * whose flags can be read (Docker's profile does the same). socket() works for AF_UNIX only: a run
 * gets no network even where the platform cannot give it an empty network namespace (gVisor, whose
 * host-network mode has no network namespaces to give), and has no netlink to list the host's. No libseccomp: the filter is ~60
 * instructions this file assembles, which the unit test disassembles and the escape tests exercise.
 */

/** What a run must not do, by syscall name. */
export const DENIED_SYSCALLS = [
  // Namespaces: the way back to capabilities (a user namespace) and to other namespaces.
  'unshare',
  'setns',
  // Mounting, in any API.
  'mount',
  'umount2',
  'pivot_root',
  'chroot',
  'open_tree',
  'move_mount',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  // Other processes' memory and descriptors (the PID namespace leaves only its own, still).
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'kcmp',
  'pidfd_getfd',
  'process_madvise',
  // Kernel attack surface a program has no use for.
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'keyctl',
  'add_key',
  'request_key',
  'open_by_handle_at',
  'name_to_handle_at',
  'fanotify_init',
  'lookup_dcookie',
  'syslog',
  // POSIX message queues: kernel memory outside the run's tmpfs (and an rlimit gVisor cannot set).
  'mq_open',
  // The machine itself.
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'reboot',
  'swapon',
  'swapoff',
  'acct',
  'quotactl',
  'quotactl_fd',
  'iopl',
  'ioperm',
  'uselib',
] as const;
type Syscall = (typeof DENIED_SYSCALLS)[number] | 'clone' | 'clone3' | 'socket';

interface Arch {
  /** AUDIT_ARCH_* (seccomp_data.arch). */
  audit: number;
  /** Syscalls of another ABI sharing this arch value (x32) are numbered from here; denied. */
  foreignFrom?: number;
  numbers: Partial<Record<Syscall, number>>;
}

// asm/unistd_64.h.
const X86_64: Arch = {
  audit: 0xc000003e,
  foreignFrom: 0x40000000,
  numbers: {
    socket: 41,
    clone: 56,
    ptrace: 101,
    syslog: 103,
    uselib: 134,
    pivot_root: 155,
    chroot: 161,
    acct: 163,
    mount: 165,
    umount2: 166,
    swapon: 167,
    swapoff: 168,
    reboot: 169,
    iopl: 172,
    ioperm: 173,
    init_module: 175,
    delete_module: 176,
    quotactl: 179,
    lookup_dcookie: 212,
    mq_open: 240,
    kexec_load: 246,
    add_key: 248,
    request_key: 249,
    keyctl: 250,
    unshare: 272,
    perf_event_open: 298,
    fanotify_init: 300,
    name_to_handle_at: 303,
    open_by_handle_at: 304,
    setns: 308,
    process_vm_readv: 310,
    process_vm_writev: 311,
    kcmp: 312,
    finit_module: 313,
    kexec_file_load: 320,
    bpf: 321,
    userfaultfd: 323,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    clone3: 435,
    pidfd_getfd: 438,
    process_madvise: 440,
    mount_setattr: 442,
    quotactl_fd: 443,
  },
};

// asm-generic/unistd.h (arm64 has no iopl, ioperm or uselib).
const AARCH64: Arch = {
  audit: 0xc00000b7,
  numbers: {
    lookup_dcookie: 18,
    umount2: 39,
    mount: 40,
    pivot_root: 41,
    chroot: 51,
    quotactl: 60,
    acct: 89,
    unshare: 97,
    kexec_load: 104,
    mq_open: 180,
    init_module: 105,
    delete_module: 106,
    syslog: 116,
    ptrace: 117,
    reboot: 142,
    add_key: 217,
    request_key: 218,
    keyctl: 219,
    clone: 220,
    swapon: 224,
    swapoff: 225,
    perf_event_open: 241,
    fanotify_init: 262,
    name_to_handle_at: 264,
    open_by_handle_at: 265,
    setns: 268,
    process_vm_readv: 270,
    process_vm_writev: 271,
    kcmp: 272,
    finit_module: 273,
    bpf: 280,
    userfaultfd: 282,
    kexec_file_load: 294,
    socket: 198,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    clone3: 435,
    pidfd_getfd: 438,
    process_madvise: 440,
    mount_setattr: 442,
    quotactl_fd: 443,
  },
};

const ARCHES: Partial<Record<NodeJS.Architecture, Arch>> = { x64: X86_64, arm64: AARCH64 };

// linux/filter.h and linux/seccomp.h.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_KILL_PROCESS = 0x80000000;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;
/** offsetof(struct seccomp_data, ...): nr, arch, args[0] (its low 32 bits on a little-endian host). */
const DATA_NR = 0;
const DATA_ARCH = 4;
const DATA_ARG0 = 16;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (and NEWTIME, 0x80). */
const CLONE_NEW_ANY = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80;
/** The one socket family a run may open (python's multiprocessing and node's IPC use it). */
const AF_UNIX = 1;

type Label = 'eperm' | 'enosys' | 'kill' | 'clone' | 'socket';
type Insn = { code: number; k: number; jt?: Label; jf?: Label; label?: Label };

/**
 * The filter for this host's architecture as bytes of `struct sock_filter[]`, or undefined on an
 * architecture without a table here (the run then has no seccomp layer; the start-up log says so).
 */
export function seccompProgram(arch: NodeJS.Architecture = process.arch): Buffer | undefined {
  const table = ARCHES[arch];
  if (!table) return undefined;
  const program: Insn[] = [
    { code: LD_W_ABS, k: DATA_ARCH },
    // Another architecture's calls (i386's int 0x80 on x86_64) have other numbers: kill.
    { code: JEQ_K, k: table.audit, jf: 'kill' },
    { code: LD_W_ABS, k: DATA_NR },
  ];
  if (table.foreignFrom !== undefined) program.push({ code: JGE_K, k: table.foreignFrom, jt: 'kill' });
  for (const name of DENIED_SYSCALLS) {
    const nr = table.numbers[name];
    if (nr !== undefined) program.push({ code: JEQ_K, k: nr, jt: 'eperm' });
  }
  program.push(
    { code: JEQ_K, k: table.numbers.clone3 as number, jt: 'enosys' },
    { code: JEQ_K, k: table.numbers.clone as number, jt: 'clone' },
    { code: JEQ_K, k: table.numbers.socket as number, jt: 'socket' },
    { code: RET_K, k: RET_ALLOW },
    { code: LD_W_ABS, k: DATA_ARG0, label: 'clone' },
    { code: JSET_K, k: CLONE_NEW_ANY, jt: 'eperm' },
    { code: RET_K, k: RET_ALLOW },
    { code: LD_W_ABS, k: DATA_ARG0, label: 'socket' },
    { code: JEQ_K, k: AF_UNIX, jf: 'eperm' },
    { code: RET_K, k: RET_ALLOW },
    { code: RET_K, k: RET_ERRNO | EPERM, label: 'eperm' },
    { code: RET_K, k: RET_ERRNO | ENOSYS, label: 'enosys' },
    { code: RET_K, k: RET_KILL_PROCESS, label: 'kill' },
  );
  const at = new Map<Label, number>();
  program.forEach((insn, i) => {
    if (insn.label) at.set(insn.label, i);
  });
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    // Jumps are relative to the next instruction and go forward only, at most 255 away.
    const rel = (label: Label | undefined) => {
      if (label === undefined) return 0;
      const offset = (at.get(label) as number) - i - 1;
      if (offset < 0 || offset > 255) throw new RangeError(`seccomp jump to ${label} out of range`);
      return offset;
    };
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(rel(insn.jt), i * 8 + 2);
    buf.writeUInt8(rel(insn.jf), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}
