import type { Logger } from 'pino';

/** starting -> ready -> draining -> closed. Readiness is true only in `ready`. */
export type LifecycleState = 'starting' | 'ready' | 'draining' | 'closed';

/**
 * Shutdown runs phase by phase, in this order (fastify's preClose, close, onClose):
 * - `not-ready`: tell the world to stop sending (readiness already fails once shutdown starts);
 * - `stop-intake`: stop accepting work (deregister, stop the HTTP listener, pause fetching);
 * - `drain`: let work in flight finish, bounded by `graceMs`;
 * - `close`: close connections (Redis, servers);
 * - `flush`: flush telemetry, last so that the shutdown itself is recorded.
 */
export const SHUTDOWN_PHASES = ['not-ready', 'stop-intake', 'drain', 'close', 'flush'] as const;
export type ShutdownPhase = (typeof SHUTDOWN_PHASES)[number];

export type ShutdownStep = () => unknown;

export interface LifecycleOptions {
  log: Logger;
  /**
   * How long the `drain` phase may take before shutdown moves on. BullMQ's `worker.close()`
   * "will not timeout by itself", so without this a stuck job would hold the container until
   * SIGKILL. Keep it below the orchestrator's stop grace period. Default 25000.
   */
  graceMs?: number;
  /** How long any step outside `drain` may take (a Redis QUIT to a dead server). Default 5000. */
  stepTimeoutMs?: number;
  /** Ends the process after a signal-initiated shutdown. Default process.exit. */
  exit?: (code: number) => void;
}

/** What a shutdown did, for logs and tests. */
export interface ShutdownReport {
  reason: string;
  /** True when every step finished in time without throwing. */
  clean: boolean;
  /** Steps that threw. */
  failed: string[];
  /** Steps still running when their deadline passed. */
  timedOut: string[];
}

export interface Lifecycle {
  readonly state: LifecycleState;
  /** True once `markReady()` was called, even while draining afterwards (for /startupz). */
  readonly started: boolean;
  /** Startup finished: readiness may pass. */
  markReady(): void;
  /**
   * Registers a shutdown step. Steps of one phase run concurrently (so one deadline covers
   * every worker's drain); phases run in `SHUTDOWN_PHASES` order. Default phase 'close'.
   */
  onShutdown(name: string, step: ShutdownStep, phase?: ShutdownPhase): void;
  /**
   * Runs every step once, whoever calls first; later calls get the same promise. A step that
   * throws or overruns is logged and the rest still run. Does not exit the process.
   */
  shutdown(reason?: string): Promise<ShutdownReport>;
  /**
   * SIGTERM/SIGINT: the first starts `shutdown` and then exits 0 if it was clean, 1 if a step
   * failed or overran (so an unclean stop shows in `docker ps -a`); a second signal exits 1
   * at once. Returns a function that removes the handlers.
   */
  installSignalHandlers(signals?: readonly NodeJS.Signals[]): () => void;
}

type Registered = { name: string; step: ShutdownStep; phase: ShutdownPhase };

class ServiceLifecycle implements Lifecycle {
  #state: LifecycleState = 'starting';
  #started = false;
  #closing: Promise<ShutdownReport> | undefined;
  readonly #steps: Registered[] = [];
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #stepTimeoutMs: number;
  readonly #exit: (code: number) => void;

  constructor(options: LifecycleOptions) {
    this.#log = options.log;
    this.#graceMs = options.graceMs ?? 25_000;
    this.#stepTimeoutMs = options.stepTimeoutMs ?? 5_000;
    this.#exit = options.exit ?? ((code) => process.exit(code));
  }

  get state(): LifecycleState {
    return this.#state;
  }

  get started(): boolean {
    return this.#started;
  }

  markReady(): void {
    if (this.#state !== 'starting') return;
    this.#state = 'ready';
    this.#started = true;
  }

  onShutdown(name: string, step: ShutdownStep, phase: ShutdownPhase = 'close'): void {
    if (!SHUTDOWN_PHASES.includes(phase)) throw new TypeError(`unknown shutdown phase "${phase}"`);
    if (this.#closing) {
      // Too late to take part: the phase may already have run. Say so rather than leak silently.
      this.#log.warn({ step: name, phase }, 'shutdown step registered after shutdown started; it will not run');
      return;
    }
    this.#steps.push({ name, step, phase });
  }

  shutdown(reason = 'shutdown'): Promise<ShutdownReport> {
    if (this.#closing) return this.#closing;
    this.#closing = this.#run(reason);
    return this.#closing;
  }

  async #run(reason: string): Promise<ShutdownReport> {
    this.#state = 'draining';
    this.#log.info({ reason }, 'shutting down');
    const report: ShutdownReport = { reason, clean: true, failed: [], timedOut: [] };
    for (const phase of SHUTDOWN_PHASES) {
      const steps = this.#steps.filter((s) => s.phase === phase);
      const deadlineMs = phase === 'drain' ? this.#graceMs : this.#stepTimeoutMs;
      await Promise.all(steps.map((s) => this.#runStep(s, deadlineMs, report)));
    }
    report.clean = report.failed.length === 0 && report.timedOut.length === 0;
    this.#state = 'closed';
    this.#log.info(
      { reason, clean: report.clean, failed: report.failed, timedOut: report.timedOut },
      'shutdown complete',
    );
    return report;
  }

  async #runStep({ name, step, phase }: Registered, deadlineMs: number, report: ShutdownReport): Promise<void> {
    const startedAt = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const overran = new Promise<'overran'>((resolve) => {
      timer = setTimeout(() => resolve('overran'), deadlineMs);
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(step), overran]);
      if (outcome === 'overran') {
        report.timedOut.push(name);
        this.#log.warn({ step: name, phase, deadlineMs }, 'shutdown step overran its deadline; moving on');
      } else {
        this.#log.debug({ step: name, phase, durationMs: Date.now() - startedAt }, 'shutdown step done');
      }
    } catch (err) {
      report.failed.push(name);
      this.#log.error({ err, step: name, phase }, 'shutdown step failed; continuing');
    } finally {
      clearTimeout(timer);
    }
  }

  installSignalHandlers(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): () => void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.#closing) {
        this.#log.warn({ signal }, 'second signal during shutdown; exiting now');
        this.#exit(1);
        return;
      }
      void this.shutdown(signal).then(
        (report) => this.#exit(report.clean ? 0 : 1),
        (err: unknown) => {
          this.#log.fatal({ err }, 'shutdown crashed');
          this.#exit(1);
        },
      );
    };
    for (const signal of signals) process.on(signal, onSignal);
    return () => {
      for (const signal of signals) process.off(signal, onSignal);
    };
  }
}

/** The process's lifecycle: states, ordered shutdown steps with deadlines, signal handling. */
export function createLifecycle(options: LifecycleOptions): Lifecycle {
  return new ServiceLifecycle(options);
}
