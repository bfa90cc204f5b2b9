import type { SubtaskEnvelope, WorkerIdentity } from '@flotilla/contracts';
import type { Logger } from 'pino';
import type { Budget } from '../budget/index.js';
import type { LlmClient, LlmToolSpec } from '../llm/index.js';
import type { Memory } from '../memory/index.js';
import type { ToolGateway } from '../tools/index.js';
import { TaskCancelledError } from './cancellation.js';
import type { AgentContext, RunTools } from './define.js';
import { afterStart } from './effects.js';
import type { StartListener, StartOutcome } from './run-book.js';

/** What every run of one worker shares. */
export interface RunShared {
  gateway: ToolGateway;
  toolSpecs: LlmToolSpec[];
  llm: LlmClient;
  memory: Memory | undefined;
  log: Logger;
}

/**
 * One run's AgentContext, and the listener its start record reports to.
 *
 * The handler runs while the start (its started event, which is its ledger entry, and the
 * cancelled check) is still on its way to Redis. Effects through the context wait for it: a cancelled task then stops the run before
 * any tool, model or memory call, and a start Redis refused fails them with its error. A handler
 * without effects never waits. Everything here is lazy or on the prototype, because one of these
 * is made per job (pnpm bench).
 */
export class RunContext implements AgentContext, StartListener {
  #outcome: StartOutcome | undefined;
  #waiters: (() => void)[] | undefined;
  #log: Logger | undefined;
  #llm: LlmClient | undefined;
  #memory: Memory | undefined;
  #tools: RunTools | undefined;
  #callIndex = 0;

  constructor(
    readonly envelope: SubtaskEnvelope,
    readonly identity: WorkerIdentity,
    readonly budget: Budget,
    readonly jobId: string | undefined,
    readonly shared: RunShared,
  ) {}

  get signal(): AbortSignal {
    return this.budget.signal;
  }

  /** A child logger costs a redaction pass; it is made only when something logs through it. */
  get log(): Logger {
    this.#log ??= this.shared.log.child(this.bindings());
    return this.#log;
  }

  get llm(): LlmClient {
    this.#llm ??= afterStart(this.shared.llm, () => this.beforeEffect());
    return this.#llm;
  }

  get memory(): Memory | undefined {
    if (this.shared.memory) this.#memory ??= afterStart(this.shared.memory, () => this.beforeEffect());
    return this.#memory;
  }

  get tools(): RunTools {
    this.#tools ??= {
      specs: () => this.shared.toolSpecs,
      call: async (name, input) => {
        const callIndex = this.#callIndex++;
        // No throwIfAborted as for the model: the gateway turns a stopped budget into an outcome.
        await this.#afterStart();
        const { taskId, subtaskId } = this.envelope;
        return this.shared.gateway.call(name, input, { budget: this.budget, taskId, subtaskId, callIndex });
      },
    };
    return this.#tools;
  }

  /** The start's failure, once Redis has answered with one. */
  get startFailure(): Error | undefined {
    return this.#outcome instanceof Error ? this.#outcome : undefined;
  }

  /** The fields every line about this run carries. */
  bindings() {
    const { taskId, subtaskId, attempt } = this.envelope;
    return { jobId: this.jobId, taskId, subtaskId, attempt };
  }

  started(outcome: StartOutcome): void {
    this.#outcome = outcome;
    if (outcome === 'cancelled') this.budget.cancel(new TaskCancelledError(this.envelope.taskId));
    else if (outcome instanceof Error) this.log.warn({ err: outcome }, 'could not record the run start');
    if (this.#waiters) for (const wake of this.#waiters) wake();
    this.#waiters = undefined;
  }

  /** Resolves once the start is recorded and the run may act; throws if it must not. */
  async beforeEffect(): Promise<void> {
    await this.#afterStart();
    this.budget.signal.throwIfAborted();
  }

  async #afterStart(): Promise<void> {
    if (this.#outcome === undefined) {
      await new Promise<void>((wake) => {
        this.#waiters ??= [];
        this.#waiters.push(wake);
      });
    }
    if (this.#outcome instanceof Error) throw this.#outcome;
  }
}
