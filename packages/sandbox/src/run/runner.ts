import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import type { SandboxLanguage, SandboxRunResult } from '@flotilla/contracts';
import { FlotillaError } from '@flotilla/runtime';
import { buildCommand, type InputFile, MAIN_FILE, type Platform, type RunLimits } from '../isolation/command.js';
import { CappedOutput } from './capture.js';
import { readOutFiles } from './out-files.js';

/** How a run ended, for metrics: the result says the same in its flags. */
export type RunOutcome = 'ok' | 'error' | 'timeout' | 'memory';

export interface RunResult extends SandboxRunResult {
  outcome: RunOutcome;
}

export interface RunInput {
  language: SandboxLanguage;
  code: string;
  stdin?: string;
  files?: Record<string, string>;
  limits: RunLimits;
  /** The run slot (0..max-1): a root service runs slot n as its own uid. */
  slot: number;
  /** Aborted when the caller went away: the run is killed. */
  signal?: AbortSignal;
}

export interface RunnerOptions {
  platform: Platform;
  /** stdout and stderr are each kept up to this many bytes; a run writing more is stopped. */
  maxOutputBytes: number;
  /** Content of out/ files returned, in all. */
  maxOutFilesBytes: number;
}

/** The launch itself failed (the tools vanished, the host is out of processes): a 500, not a run result. */
export class SandboxRunError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOTILLA_SANDBOX_RUN', message, options);
  }
}

// What python and node print when an allocation fails under RLIMIT_DATA (MemoryError; V8's heap
// limit; an ArrayBuffer or a C++ allocation failing; malloc's errno in a child).
const OUT_OF_MEMORY =
  /MemoryError|JavaScript heap out of memory|Array buffer allocation failed|Fatal process out of memory|Fatal process OOM|std::bad_alloc|Cannot allocate memory/;

/** 128 + SIGXCPU: the shell's status for a program the CPU-time limit ended. */
const CPU_LIMIT_STATUS = 128 + constants.signals.SIGXCPU;

/** After the launcher exits, how long its pipes may take to close before they are cut. */
const CLOSE_GRACE_MS = 2_000;

type StopReason = 'timeout' | 'output' | 'aborted';

/**
 * Runs programs in the sandbox. Each run: a fresh process tree in its own namespaces and its own
 * process group, killed as a whole at the wall-time limit; its output capped; its out/ files read
 * back from the wrapper's tar. Never throws for anything the program does.
 */
export class Runner {
  readonly #options: RunnerOptions;
  readonly #running = new Set<() => void>();

  constructor(options: RunnerOptions) {
    this.#options = options;
  }

  /** Runs in progress. */
  get active(): number {
    return this.#running.size;
  }

  /** Kills every run in progress (shutdown's last resort: they also die with this process). */
  killAll(): void {
    for (const kill of this.#running) kill();
  }

  async run(input: RunInput): Promise<RunResult> {
    const { platform, maxOutputBytes, maxOutFilesBytes } = this.#options;
    const files: InputFile[] = [
      { path: MAIN_FILE[input.language], content: Buffer.from(input.code) },
      ...Object.entries(input.files ?? {}).map(([path, content]) => ({ path, content: Buffer.from(content) })),
    ];
    const cmd = buildCommand(platform, { language: input.language, limits: input.limits, slot: input.slot, files });

    const started = performance.now();
    const child = spawn(cmd.file, cmd.args, {
      env: cmd.env,
      // 0 stdin, 1 stdout, 2 stderr, 3 the out/ tar, 4 bubblewrap's status, 5... the input files.
      stdio: [
        input.stdin === undefined ? 'ignore' : 'pipe',
        'pipe',
        'pipe',
        'pipe',
        'pipe',
        ...cmd.inputs.map(() => 'pipe' as const),
      ],
      // Its own process group, so the timer kills the launcher and whatever shares its group at once.
      detached: true,
    });

    let stopped: StopReason | undefined;
    // The sandbox's PID 1, as bubblewrap reports it once the namespaces exist.
    let sandboxPid: number | undefined;
    let forceTimer: NodeJS.Timeout | undefined;
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    const killGroup = () => {
      if (child.pid === undefined || exited()) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const kill = (reason: StopReason) => {
      stopped ??= reason;
      if (child.pid === undefined || exited()) return;
      if (sandboxPid === undefined) {
        killGroup(); // still setting up: the launcher is all there is
        return;
      }
      try {
        // The PID namespace's init: the kernel kills every process of the namespace with it,
        // however they regrouped or daemonized, and bubblewrap reaps it and exits. It is
        // bubblewrap's unreaped child while bubblewrap lives, so the pid cannot be another's.
        process.kill(sandboxPid, 'SIGKILL');
      } catch {
        // already gone
      }
      // Should bubblewrap itself hang, its group goes too (the run's processes die with it:
      // --die-with-parent).
      forceTimer ??= setTimeout(killGroup, 1_000);
    };
    const killForShutdown = () => kill('aborted');
    this.#running.add(killForShutdown);

    const stdout = new CappedOutput(maxOutputBytes);
    const stderr = new CappedOutput(maxOutputBytes);
    // The tar of out/: content plus 512-byte headers; more than this is cut and flagged.
    const tarCap = maxOutFilesBytes + 64 * 1024;
    const tar = new CappedOutput(tarCap, 0);

    const timer = setTimeout(() => kill('timeout'), input.limits.timeoutMs);
    const onAbort = () => kill('aborted');
    input.signal?.addEventListener('abort', onAbort, { once: true });
    if (input.signal?.aborted) onAbort();

    const [stdinPipe, stdoutPipe, stderrPipe, tarPipe, statusPipe, ...inputPipes] = child.stdio as unknown as [
      Writable | null,
      Readable,
      Readable,
      Readable,
      Readable,
      ...Writable[],
    ];
    const streams = [stdinPipe, stdoutPipe, stderrPipe, tarPipe, statusPipe, ...inputPipes];
    // A program that never reads stdin, or a launcher that died early, closes these pipes under us.
    for (const s of streams) s?.on('error', () => {});
    stdoutPipe.on('data', (c: Buffer) => {
      if (!stdout.push(c)) kill('output');
    });
    stderrPipe.on('data', (c: Buffer) => {
      if (!stderr.push(c)) kill('output');
    });
    tarPipe.on('data', (c: Buffer) => {
      if (!tar.push(c)) tarPipe.destroy();
    });
    // Written by bubblewrap alone (the sandbox never has this fd): JSON objects, the first with child-pid.
    let status = '';
    statusPipe.on('data', (c: Buffer) => {
      if (status.length > 4096) return;
      status += c.toString('utf8');
      const pid = /"child-pid"\s*:\s*(\d+)/.exec(status)?.[1];
      if (sandboxPid === undefined && pid !== undefined) {
        sandboxPid = Number(pid);
        if (stopped !== undefined) kill(stopped); // a stop that came during set-up
      }
    });
    cmd.inputs.forEach((content, i) => {
      inputPipes[i]?.end(content);
    });
    if (input.stdin !== undefined) stdinPipe?.end(input.stdin);

    try {
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.once('error', (err) => reject(new SandboxRunError(`cannot start a run: ${err.message}`, { cause: err })));
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      await closed(child, streams);
      if (sandboxPid === undefined && stopped === undefined) {
        // The sandbox never came up: bubblewrap's complaint is on stderr. The host's fault, not the program's.
        throw new SandboxRunError(
          `the sandbox did not start: ${stderr.text().trim().slice(0, 500) || `exit ${exit.code}`}`,
        );
      }

      const exitCode = exit.code ?? 128 + (exit.signal ? constants.signals[exit.signal] : 0);
      const timedOut = stopped === 'timeout' || (stopped === undefined && exitCode === CPU_LIMIT_STATUS);
      const memoryExceeded =
        !timedOut && exitCode !== 0 && (OUT_OF_MEMORY.test(stderr.tail()) || OUT_OF_MEMORY.test(stderr.text()));
      const out = readOutFiles(tar.bytes(), maxOutFilesBytes, tar.truncated);
      const outputTruncated = stdout.truncated || stderr.truncated || (out?.truncated ?? false);
      const outcome: RunOutcome = timedOut ? 'timeout' : memoryExceeded ? 'memory' : exitCode === 0 ? 'ok' : 'error';
      return {
        outcome,
        stdout: stdout.text(),
        stderr: stderr.text(),
        exitCode,
        timedOut,
        memoryExceeded,
        outputTruncated,
        durationMs,
        ...(out && Object.keys(out.files).length > 0 ? { files: out.files } : {}),
      };
    } finally {
      clearTimeout(timer);
      clearTimeout(forceTimer);
      input.signal?.removeEventListener('abort', onAbort);
      kill('aborted');
      this.#running.delete(killForShutdown);
    }
  }
}

/** Waits for the launcher's pipes to close; once the sandbox is gone they do at once, else they are cut. */
async function closed(child: ChildProcess, streams: (Readable | Writable | null)[]): Promise<void> {
  if (streams.every((s) => !s || s.closed || s.destroyed)) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      for (const s of streams) s?.destroy();
      resolve();
    }, CLOSE_GRACE_MS);
    child.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
