import { redisKeys, type StopReason, type Usage, type WorkerIdentity } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { STREAM_MAX_LEN, TASK_EVENTS_TTL_SECONDS } from './events.js';

/**
 * The ops of one batch, in ARGV order after the TTL and the stream cap:
 *   's', subtaskId, startedJson  KEYS cancelled, runs, events: ledger +1 and the started event;
 *                                returns 0 if the task is cancelled, else 1.
 *   'f', finishedJson            KEYS events: the finished event; returns 1.
 * The whole batch is atomic, so a key's TTL is refreshed and a task's cancelled key read once per
 * batch: the subtasks of one task tend to start and finish together.
 */
const BOOK = `
local ttl, maxlen = ARGV[1], ARGV[2]
local out, touched, cancelled = {}, {}, {}
local function touch(key)
  if not touched[key] then
    touched[key] = true
    redis.call('EXPIRE', key, ttl)
  end
end
local k, a = 1, 3
while a <= #ARGV do
  if ARGV[a] == 's' then
    redis.call('HINCRBY', KEYS[k + 1], ARGV[a + 1], 1)
    redis.call('XADD', KEYS[k + 2], 'MAXLEN', '~', maxlen, '*', 'event', ARGV[a + 2])
    touch(KEYS[k + 1])
    touch(KEYS[k + 2])
    if cancelled[KEYS[k]] == nil then cancelled[KEYS[k]] = redis.call('EXISTS', KEYS[k]) end
    out[#out + 1] = 1 - cancelled[KEYS[k]]
    k = k + 3
    a = a + 3
  else
    redis.call('XADD', KEYS[k], 'MAXLEN', '~', maxlen, '*', 'event', ARGV[a + 1])
    touch(KEYS[k])
    out[#out + 1] = 1
    k = k + 1
    a = a + 2
  end
end
return out`;

/** How a run's start went: recorded, found its task cancelled, or refused by Redis. */
export type StartOutcome = 'running' | 'cancelled' | Error;

/** Hears how a start went; a method, not a promise, so a start allocates nothing per job. */
export interface StartListener {
  started(outcome: StartOutcome): void;
}

/** How a run ended, as its finished event says. */
export interface RunEnd {
  ok: boolean;
  stopReason: StopReason;
  usage: Usage;
}

type Op =
  | { kind: 's'; taskId: string; subtaskId: string; listener: StartListener }
  | { kind: 'f'; taskId: string; subtaskId: string; end: RunEnd };

interface BookCommands {
  flotillaBook(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
}

/**
 * A worker's execution ledger (runs per subtask) and the subtask_started/finished events in each
 * task's stream. A worker pays this on every job, so it stays off the job's critical path: the
 * ops of all jobs that reach a start or a finish in one event-loop turn go out as one EVALSHA,
 * and a job waits for its start only before its first effect (see RunContext). Redis and node
 * share the cores, so each round trip a job waits for, and each write, costs throughput.
 *
 * Ops are sent in the order they are queued, and before the processor returns, so a job's events
 * reach Redis on this connection before BullMQ's completion on its own.
 *
 * With Redis Cluster the queue prefix needs a hash tag (as BullMQ's does), so that every task's
 * keys share one slot.
 */
export class RunBook {
  readonly #redis: Redis & BookCommands;
  readonly #keys: ReturnType<typeof redisKeys>;
  readonly #ttlSeconds: number;
  readonly #onFinishError: (err: unknown) => void;
  /** `,"role":…,"replica":…` of every event this worker appends. */
  readonly #whoJson: string;
  #pending: Op[] = [];
  /** Resolves when the pending batch is written; one per batch, shared by its finishes. */
  #sent: Promise<void> | undefined;
  #markSent: (() => void) | undefined;

  /**
   * `onFinishError` hears of finished events Redis refused (the job's own result still holds
   * them). `ttlSeconds` applies to the ledger and the events alike: both live as long as the task.
   */
  constructor(
    redis: Redis,
    prefix: string,
    who: Pick<WorkerIdentity, 'role' | 'replica'>,
    onFinishError: (err: unknown) => void,
    ttlSeconds = TASK_EVENTS_TTL_SECONDS,
  ) {
    this.#whoJson = `,"role":${JSON.stringify(who.role)},"replica":${JSON.stringify(who.replica)}`;
    const r = redis as Redis & Partial<BookCommands>;
    if (typeof r.flotillaBook !== 'function') redis.defineCommand('flotillaBook', { lua: BOOK });
    this.#redis = r as Redis & BookCommands;
    this.#keys = redisKeys(prefix);
    this.#onFinishError = onFinishError;
    this.#ttlSeconds = ttlSeconds;
  }

  /**
   * Counts a run in the ledger and appends its started event, then tells `listener` whether the
   * task had been cancelled by then (the run should stop before any effect).
   */
  start(taskId: string, subtaskId: string, listener: StartListener): void {
    this.#enqueue({ kind: 's', taskId, subtaskId, listener });
  }

  /**
   * Appends a run's finished event. Resolves once it is written to the connection, not when Redis
   * answers: awaiting that before returning from a job puts it ahead of BullMQ's completion.
   */
  finish(taskId: string, subtaskId: string, end: RunEnd): Promise<void> {
    this.#enqueue({ kind: 'f', taskId, subtaskId, end });
    this.#sent ??= new Promise((resolve) => {
      this.#markSent = resolve;
    });
    return this.#sent;
  }

  #enqueue(op: Op): void {
    // setImmediate, not a microtask: it collects the jobs of a whole event-loop turn (8 or so at
    // concurrency 8, against 1 or 2), and one EVALSHA costs what one op alone would.
    if (this.#pending.length === 0) setImmediate(this.#flush);
    this.#pending.push(op);
  }

  readonly #flush = () => {
    const ops = this.#pending;
    const markSent = this.#markSent;
    this.#pending = [];
    this.#sent = undefined;
    this.#markSent = undefined;
    const k = this.#keys;
    // One timestamp per batch: its events are appended in the same instant anyway.
    const at = `,"at":"${new Date().toISOString()}"}`;
    const keys: string[] = [];
    const args: (string | number)[] = [this.#ttlSeconds, STREAM_MAX_LEN];
    for (const op of ops) {
      // The TaskEvent JSON, written out by hand: JSON.stringify of the whole event was the
      // costliest line of a job (pnpm bench). Field order as eventJson() writes it.
      const ids = `"taskId":${JSON.stringify(op.taskId)},"subtaskId":${JSON.stringify(op.subtaskId)}${this.#whoJson}`;
      if (op.kind === 's') {
        keys.push(k.cancelled(op.taskId), k.taskRuns(op.taskId), k.taskEvents(op.taskId));
        args.push('s', op.subtaskId, `{"type":"subtask_started",${ids}${at}`);
      } else {
        const { ok, stopReason, usage: u } = op.end;
        const usage = `{"steps":${u.steps},"toolCalls":${u.toolCalls},"tokens":${u.tokens},"ms":${u.ms}}`;
        keys.push(k.taskEvents(op.taskId));
        args.push(
          'f',
          `{"type":"subtask_finished",${ids},"ok":${ok},"stopReason":"${stopReason}","usage":${usage}${at}`,
        );
      }
    }
    const reply = this.#redis.flotillaBook(keys.length, ...keys, ...args);
    markSent?.();
    reply.then(
      (out) => {
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i];
          if (op?.kind === 's') op.listener.started(out[i] === 1 ? 'running' : 'cancelled');
        }
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        for (const op of ops) if (op.kind === 's') op.listener.started(error);
        if (markSent) this.#onFinishError(error);
      },
    );
  };
}
