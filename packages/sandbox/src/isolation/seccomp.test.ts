import { describe, expect, it } from 'vitest';
import { seccompProgram } from './seccomp.js';

/** Runs a classic-BPF seccomp program the way the kernel does, over (arch, nr, args[0]). */
function evaluate(program: Buffer, data: { arch: number; nr: number; arg0?: number }): number {
  const word = (offset: number) => {
    if (offset === 0) return data.nr >>> 0;
    if (offset === 4) return data.arch >>> 0;
    if (offset === 16) return (data.arg0 ?? 0) >>> 0;
    throw new Error(`unexpected load at ${offset}`);
  };
  let acc = 0;
  for (let pc = 0; pc * 8 < program.length; ) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x20:
        acc = word(k);
        pc++;
        break;
      case 0x15:
        pc += 1 + (acc === k ? jt : jf);
        break;
      case 0x35:
        pc += 1 + (acc >= k ? jt : jf);
        break;
      case 0x45:
        pc += 1 + ((acc & k) !== 0 ? jt : jf);
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unexpected opcode ${code}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;
const KILL = 0x80000000;
const X86_64 = 0xc000003e;
const AARCH64 = 0xc00000b7;
const CLONE_NEWUSER = 0x10000000;
// What pthread_create and fork pass to clone: no namespace flags.
const THREAD_FLAGS = 0x003d0f00;

describe('seccompProgram', () => {
  const x64 = seccompProgram('x64') as Buffer;
  const arm64 = seccompProgram('arm64') as Buffer;

  it.each([
    ['read', 0, ALLOW],
    ['write', 1, ALLOW],
    ['execve', 59, ALLOW],
    ['ptrace', 101, EPERM],
    ['mount', 165, EPERM],
    ['unshare', 272, EPERM],
    ['setns', 308, EPERM],
    ['bpf', 321, EPERM],
    ['keyctl', 250, EPERM],
    ['perf_event_open', 298, EPERM],
    ['io_uring_setup', 425, EPERM],
    ['clone3', 435, ENOSYS],
    ['an x32 call', 0x40000000 + 1, KILL],
  ])('x86_64: %s -> %s', (_name, nr, action) => {
    expect(evaluate(x64, { arch: X86_64, nr })).toBe(action);
  });

  it('x86_64: clone for threads and fork passes; clone into a new namespace does not', () => {
    expect(evaluate(x64, { arch: X86_64, nr: 56, arg0: THREAD_FLAGS })).toBe(ALLOW);
    expect(evaluate(x64, { arch: X86_64, nr: 56, arg0: 17 /* SIGCHLD: fork */ })).toBe(ALLOW);
    expect(evaluate(x64, { arch: X86_64, nr: 56, arg0: CLONE_NEWUSER | 17 })).toBe(EPERM);
  });

  it('x86_64: socket for AF_UNIX only; inet, inet6, netlink and packet sockets are refused', () => {
    expect(evaluate(x64, { arch: X86_64, nr: 41, arg0: 1 })).toBe(ALLOW);
    for (const family of [2, 10, 16, 17]) expect(evaluate(x64, { arch: X86_64, nr: 41, arg0: family })).toBe(EPERM);
    expect(evaluate(arm64, { arch: AARCH64, nr: 198, arg0: 2 })).toBe(EPERM);
    expect(evaluate(arm64, { arch: AARCH64, nr: 198, arg0: 1 })).toBe(ALLOW);
  });

  it('kills a call made in another architecture’s numbering (i386 on x86_64)', () => {
    expect(evaluate(x64, { arch: 0x40000003, nr: 0 })).toBe(KILL);
  });

  it('uses arm64’s own numbers there', () => {
    expect(evaluate(arm64, { arch: AARCH64, nr: 117 })).toBe(EPERM); // ptrace
    expect(evaluate(arm64, { arch: AARCH64, nr: 101 })).toBe(ALLOW); // nanosleep, ptrace's number on x86_64
    expect(evaluate(arm64, { arch: AARCH64, nr: 220, arg0: CLONE_NEWUSER })).toBe(EPERM);
    expect(evaluate(arm64, { arch: AARCH64, nr: 435 })).toBe(ENOSYS);
  });

  it('has no table for other architectures', () => {
    expect(seccompProgram('s390x')).toBeUndefined();
  });
});
