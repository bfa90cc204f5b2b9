import { accessSync, constants, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { SandboxLanguage } from '@flotilla/contracts';
import { SandboxSetupError } from '../errors.js';
import { type IsolationMode, interpreterPrefix, networkNamespace, type Platform } from './command.js';
import { seccompProgram } from './seccomp.js';

/**
 * Where tools are looked up: the system's directories only, never the service's PATH (a PATH
 * entry someone else can write would choose what runs as root).
 */
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Top-level directories a merged-/usr system links into /usr, and older ones keep apart. */
const TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

function which(name: string): string | undefined {
  for (const dir of SYSTEM_PATH) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function requireTool(name: string, pkg: string): string {
  const found = which(name);
  if (!found) throw new SandboxSetupError(`${name} not found in ${SYSTEM_PATH.join(':')} (install ${pkg})`);
  return found;
}

function interpreter(configured: string | undefined, name: string, fallback?: string): string {
  const path = configured ?? which(name) ?? fallback;
  if (!path) throw new SandboxSetupError(`${name} not found in ${SYSTEM_PATH.join(':')}; set its SANDBOX_* path`);
  try {
    return realpathSync(path);
  } catch (err) {
    throw new SandboxSetupError(`cannot resolve the interpreter ${path}`, { cause: err });
  }
}

/** gVisor reports a kernel release of its own (`4.19.0-gvisor`); nothing else does. */
export const underGvisor = (kernelRelease = release()) => kernelRelease.endsWith('-gvisor');

export interface PlatformOptions {
  mode: IsolationMode;
  uidBase: number;
  python?: string;
  node?: string;
}

/**
 * The host's tools and interpreters for one isolation mode. Throws SandboxSetupError naming what
 * is missing; whether the mode works at all is the start-up self-test's question (selftest.ts).
 */
export function detectPlatform(options: PlatformOptions): Platform {
  const root = process.geteuid?.() === 0;
  if (options.mode === 'root' && !root)
    throw new SandboxSetupError('isolation mode root needs the service to run as root');
  // Without a network namespace per run, runs share the service's: on a host kernel that is the
  // host's, with its abstract unix sockets (which seccomp cannot tell apart). Under gVisor it is
  // gVisor's own, holding nothing but this service.
  if (!networkNamespace(options.mode) && !underGvisor())
    throw new SandboxSetupError(`isolation mode ${options.mode} is for gVisor only (kernel ${release()})`);
  const tools = {
    bwrap: requireTool('bwrap', 'bubblewrap'),
    prlimit: requireTool('prlimit', 'util-linux'),
    setpriv: requireTool('setpriv', 'util-linux'),
    choom: requireTool('choom', 'util-linux'),
    sh: requireTool('sh', 'dash'),
    tar: requireTool('tar', 'tar'),
  };
  const interpreters: Record<SandboxLanguage, string> = {
    python: interpreter(options.python, 'python3'),
    javascript: interpreter(options.node, 'node', process.execPath),
  };
  const readOnly = ['/usr'];
  for (const path of Object.values(interpreters)) {
    const prefix = interpreterPrefix(path);
    if (prefix && !readOnly.includes(prefix)) readOnly.push(prefix);
  }
  const topLevel: Platform['topLevel'] = [];
  for (const path of TOP_LEVEL) {
    try {
      const st = lstatSync(path);
      if (st.isSymbolicLink()) topLevel.push({ path, symlink: readlinkSync(path) });
      else if (st.isDirectory()) topLevel.push({ path });
    } catch {
      // absent on this system
    }
  }
  const seccomp = seccompProgram();
  if (!seccomp && !networkNamespace(options.mode))
    throw new SandboxSetupError(
      `isolation mode ${options.mode} keeps runs off the network by seccomp alone, which has no table for ${process.arch}`,
    );
  return {
    mode: options.mode,
    root,
    uidBase: options.uidBase,
    tools,
    interpreters,
    readOnly,
    topLevel,
    ...(seccomp ? { seccomp } : {}),
  };
}
