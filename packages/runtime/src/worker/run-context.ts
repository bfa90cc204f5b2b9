import { DEFAULT_TENANT, type SubtaskEnvelope, type WorkerIdentity } from '@flotilla/contracts';
import type { Logger } from 'pino';
import type { Budget } from '../budget/index.js';
import type { LlmClient, LlmToolSpec } from '../llm/index.js';
import type { Memory, MemoryStore } from '../memory/index.js';
import type { ToolGateway, ToolOutcome } from '../tools/index.js';
import { type ApprovalDeps, ApprovalPending, checkApproval } from './approval-gate.js';
import { TaskCancelledError } from './cancellation.js';
import type { AgentContext, RunTools } from './define.js';
import { gatedLlm, gatedMemory } from './effects.js';
import { type JournalState, RunJournal } from './journal.js';
import type { StartOutcome } from './run-book.js';

/** What every run of one worker shares. */
export interface RunShared {
  gateway: ToolGateway;
  /** The tools offered to the model now (a source's tools may change between runs). */
  toolSpecs: () => LlmToolSpec[];
  llm: LlmClient;
  memory: MemoryStore | undefined;
  log: Logger;
  /** Where calls of tools that need approval ask for it. */
  approvals: ApprovalDeps;
}

/**
 * One run's AgentContext.
 *
 * The handler starts while the run's start (its started event, which is its ledger entry, and the
 * cancelled check) is still on its way to Redis: a handler that thinks before it acts loses no
 * time to it. Effects through the context wait for it: a cancelled task then stops the run before
 * any tool, model or memory call, and a start Redis refused fails them with its error. The getters
 * are lazy because one of these is made per job.
 */
export class RunContext implements AgentContext {
  readonly #start: Promise<void>;
  #startFailure: unknown;
  #log: Logger | undefined;
  #llm: LlmClient | undefined;
  #memory: Memory | undefined;
  #tools: RunTools | undefined;
  #callIndex = 0;
  /** Identical writes this run has made so far (see ToolCallOptions.writes). */
  readonly #writes: Map<string, number>;
  #journal: RunJournal | undefined;
  readonly #resumed: JournalState | undefined;
  #parked: ApprovalPending | undefined;

  constructor(
    readonly envelope: SubtaskEnvelope,
    readonly identity: WorkerIdentity,
    readonly budget: Budget,
    readonly jobId: string | undefined,
    readonly shared: RunShared,
    start: Promise<StartOutcome>,
    resumed?: JournalState,
  ) {
    this.#resumed = resumed;
    this.#writes = new Map(resumed?.writes);
    // Handled here, at once: a start that fails before anyone awaits it is not an unhandled rejection.
    this.#start = start.then(
      (outcome) => {
        if (outcome === 'cancelled') this.budget.cancel(new TaskCancelledError(this.envelope.taskId));
      },
      (err: unknown) => {
        this.#startFailure = err;
        this.log.warn({ err }, 'could not record the run start');
      },
    );
  }

  /**
   * What the run saw (model replies, tool outcomes), and what it saw before it parked, to replay.
   * Made on first use: a handler that calls neither the model nor a tool allocates none.
   */
  get journal(): RunJournal {
    this.#journal ??= new RunJournal(this.#resumed);
    return this.#journal;
  }

  get signal(): AbortSignal {
    return this.budget.signal;
  }

  /** A child logger costs a redaction pass; it is made only when something logs through it. */
  get log(): Logger {
    this.#log ??= this.shared.log.child(this.bindings());
    return this.#log;
  }

  get llm(): LlmClient {
    if (!this.#llm) {
      const live = gatedLlm(this.shared.llm, () => this.beforeEffect());
      this.#llm = {
        provider: live.provider,
        model: live.model,
        chat: async (request, options) => {
          const replayed = this.journal.next('llm');
          if (replayed) {
            // Gated like a live call (a cancelled task stops here); charged as the live call was.
            await this.beforeEffect();
            if (replayed.tokens > 0) options?.budget?.chargeTokens(replayed.tokens);
            this.journal.record(replayed);
            return replayed.response;
          }
          const before = options?.budget ? this.budget.usage().tokens : 0;
          const response = await live.chat(request, options);
          const tokens = options?.budget ? this.budget.usage().tokens - before : 0;
          this.journal.record({ kind: 'llm', response, tokens });
          return response;
        },
      };
    }
    return this.#llm;
  }

  /** The task's tenant (DEFAULT_TENANT for envelopes that name none): what memory is scoped by. */
  get tenant(): string {
    return this.envelope.tenant ?? DEFAULT_TENANT;
  }

  get memory(): Memory | undefined {
    if (this.shared.memory)
      this.#memory ??= gatedMemory(this.shared.memory.forTenant(this.tenant), () => this.beforeEffect());
    return this.#memory;
  }

  get tools(): RunTools {
    this.#tools ??= {
      specs: () => this.shared.toolSpecs(),
      call: async (name, input) => {
        const callIndex = this.#callIndex++;
        // No abort check as for the model: the gateway turns a stopped budget into an outcome.
        await this.recorded();
        if (this.#parked) throw this.#parked;
        const replayed = this.journal.next('tool', name);
        if (replayed) {
          if (replayed.toolCalls > 0) this.budget.chargeToolCall();
          this.journal.record(replayed);
          return replayed.outcome;
        }
        const { taskId, subtaskId } = this.envelope;
        const { gateway } = this.shared;
        if (gateway.requiresApproval(name) && !this.budget.stopReason) {
          let refused: ToolOutcome | undefined;
          try {
            refused = await checkApproval(this.shared.approvals, {
              taskId,
              subtaskId,
              role: this.identity.role,
              tenant: this.tenant,
              jobId: this.jobId,
              callIndex,
              name,
              input,
              log: this.log,
            });
          } catch (err) {
            if (err instanceof ApprovalPending) this.#parked = err;
            throw err;
          }
          if (refused) {
            this.journal.record({ kind: 'tool', name, outcome: refused, toolCalls: 0 });
            return refused;
          }
        }
        const before = this.budget.usage().toolCalls;
        const outcome = await gateway.call(name, input, {
          budget: this.budget,
          taskId,
          subtaskId,
          callIndex,
          writes: this.#writes,
          ...(this.envelope.retryOf ? { keyScope: this.envelope.retryOf } : {}),
          tenant: this.tenant,
          role: this.identity.role,
        });
        this.journal.record({ kind: 'tool', name, outcome, toolCalls: this.budget.usage().toolCalls - before });
        return outcome;
      },
    };
    return this.#tools;
  }

  /** The approval this run waits for, once a call asked for one; the processor then parks the job. */
  get parked(): ApprovalPending | undefined {
    return this.#parked;
  }

  /**
   * The fleet services (memory) a tool call of this run found down, sorted: the run's output was
   * made without them, so its result says so (SubtaskResult.degraded) and the task ends partial.
   */
  degraded(): string[] {
    const services = new Set<string>();
    for (const e of this.journal.entries) {
      if (e.kind === 'tool' && !e.outcome.ok && e.outcome.service) services.add(e.outcome.service);
    }
    return [...services].sort();
  }

  /** The identical-write counts so far, saved with the journal when the run parks. */
  writes(): [string, number][] {
    return [...this.#writes];
  }

  /** The fields every line about this run carries. */
  bindings() {
    const { taskId, subtaskId, attempt } = this.envelope;
    return { jobId: this.jobId, taskId, subtaskId, attempt };
  }

  /** Why the start failed, once Redis has refused it; undefined while it is pending or after it succeeded. */
  get startFailure(): unknown {
    return this.#startFailure;
  }

  /** Resolves once the start is recorded (and, if the task was cancelled, the budget cancelled); throws if Redis refused it. */
  async recorded(): Promise<void> {
    await this.#start;
    if (this.#startFailure !== undefined) throw this.#startFailure;
  }

  /** Resolves once the run may act; throws if it must not. */
  async beforeEffect(): Promise<void> {
    await this.recorded();
    if (this.#parked) throw this.#parked;
    this.budget.signal.throwIfAborted();
  }
}
