import { type ChildProcess, spawn } from 'node:child_process';

/** A real child process (a service of the local mesh, or one under test), with its output kept. */
export interface RunningProcess {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stdout lines parsed as JSON (pino logs); other lines are skipped. */
  jsonLines(): Record<string, unknown>[];
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<number | NodeJS.Signals>;
  signal(sig: NodeJS.Signals): void;
}

export function startProcess(
  command: string,
  args: string[],
  {
    env = {},
    cwd,
    ownGroup = false,
  }: {
    env?: Record<string, string | undefined>;
    cwd?: string;
    /**
     * Start it in a process group of its own, so a terminal's Ctrl-C reaches only the parent, which
     * then stops it once, gracefully (a second signal would force the child out mid-drain).
     */
    ownGroup?: boolean;
  } = {},
): RunningProcess {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: ownGroup,
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once('exit', (code, sig) => resolve(code ?? sig ?? -1));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    jsonLines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
    exited,
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
}

/** Ends every process still running: SIGTERM, then SIGKILL after `graceMs` (a mesh's stop, a test's afterEach). */
export async function stopAll(procs: RunningProcess[], graceMs = 5000): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.signal('SIGTERM');
      const timer = setTimeout(() => p.signal('SIGKILL'), graceMs);
      await p.exited;
      clearTimeout(timer);
    }),
  );
}
