import type { SandboxLanguage } from '@flotilla/contracts';
import { SandboxSetupError } from '../errors.js';
import { Runner } from '../run/runner.js';
import type { IsolationMode, Platform, RunLimits } from './command.js';
import { detectPlatform, type PlatformOptions, underGvisor } from './platform.js';

const PROBES: Record<SandboxLanguage, string> = {
  python: 'print(6 * 7)',
  javascript: 'console.log(6 * 7)',
};
/**
 * With a seccomp filter the python probe also proves the socket rule holds: an inet socket must be
 * refused. The `gvisor` mode relies on it alone for the network, so this is that mode's proof.
 */
const NETWORK_PROBE = [
  'import socket',
  'try:',
  '    socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
  '    print("an inet socket opened")',
  'except PermissionError:',
  '    print(6 * 7)',
].join('\n');

const PROBE_LIMITS: RunLimits = {
  timeoutMs: 10_000,
  memoryMb: 128,
  procs: 32,
  openFiles: 64,
  diskMb: 1,
  fileBytes: 1024,
};

/** Runs a tiny program in each language the way every run will; resolves, or rejects with what went wrong. */
async function probe(platform: Platform): Promise<void> {
  const runner = new Runner({ platform, maxOutputBytes: 4096, maxOutFilesBytes: 0 });
  const probes = platform.seccomp ? { ...PROBES, python: NETWORK_PROBE } : PROBES;
  for (const [language, code] of Object.entries(probes) as [SandboxLanguage, string][]) {
    const r = await runner.run({ language, code, limits: PROBE_LIMITS, slot: 0 });
    if (r.exitCode !== 0 || r.stdout.trim() !== '42') {
      const why = (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`).split('\n').slice(-3).join(' | ');
      throw new SandboxSetupError(`${language} does not run in mode ${platform.mode}: ${why.slice(0, 300)}`);
    }
  }
}

/**
 * The isolation this host supports, proven by running a program in each language through it.
 * `auto` tries `userns` (a user namespace: works as root and non-root), then `root` (root
 * services on kernels without unprivileged user namespaces), then, under gVisor only, `gvisor`
 * (no network namespace per run). Never falls back to running unisolated: with no mode working it
 * throws, and the service does not start.
 */
export async function chooseIsolation(
  requested: IsolationMode | 'auto',
  options: Omit<PlatformOptions, 'mode'>,
): Promise<Platform> {
  const root = process.geteuid?.() === 0;
  const candidates: IsolationMode[] =
    requested !== 'auto'
      ? [requested]
      : [
          ...(root ? (['userns', 'root'] as const) : (['userns'] as const)),
          ...(underGvisor() ? (['gvisor'] as const) : []),
        ];
  const failures: string[] = [];
  for (const mode of candidates) {
    try {
      const platform = detectPlatform({ ...options, mode });
      await probe(platform);
      return platform;
    } catch (err) {
      failures.push(`${mode}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new SandboxSetupError(`no isolation mode works on this host (${failures.join('; ')})`);
}
