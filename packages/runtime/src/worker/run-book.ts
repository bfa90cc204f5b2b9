import { redisKeys } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { STREAM_MAX_LEN, TASK_EVENTS_TTL_SECONDS } from './events.js';

/**
 * The ops of one batch, in ARGV order after the TTL and the stream cap:
 *   's', subtaskId, startedJson  KEYS cancelled, runs, events: ledger +1 and the started event;
 *                                returns 0 if the task is cancelled, else 1.
 *   'f', finishedJson            KEYS events: the finished event; returns 1.
 * Each op is atomic because the whole script is. A key's TTL is refreshed once per batch: the
 * subtasks of one task tend to start and finish together.
 */
const BOOK = `
local ttl, maxlen = ARGV[1], ARGV[2]
local out, expiring = {}, {}
local function touch(key)
  if not expiring[key] then
    expiring[key] = true
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
    out[#out + 1] = 1 - redis.call('EXISTS', KEYS[k])
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

interface Op {
  keys: string[];
  args: string[];
  /** Starts only. */
  listener?: StartListener;
}

interface BookCommands {
  flotillaBook(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
}

/**
 * A worker's execution ledger (runs per subtask) and the subtask_started/finished events in each
 * task's stream. A worker pays this on every job, so it stays off the job's critical path: the
 * ops of all jobs that reach a start or a finish in one turn of the microtask queue go out as one
 * EVALSHA, and a job waits for its start only before its first effect (see the processor). That
 * takes runWorker from 0.5x to over 0.8x a bare BullMQ worker (pnpm bench): Redis and node share
 * the cores, so each extra round trip a job waits for costs throughput, not just latency.
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
    onFinishError: (err: unknown) => void,
    ttlSeconds = TASK_EVENTS_TTL_SECONDS,
  ) {
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
  start(taskId: string, subtaskId: string, startedJson: string, listener: StartListener): void {
    const k = this.#keys;
    this.#enqueue({
      keys: [k.cancelled(taskId), k.taskRuns(taskId), k.taskEvents(taskId)],
      args: ['s', subtaskId, startedJson],
      listener,
    });
  }

  /**
   * Appends a run's finished event. Resolves once it is written to the connection, not when Redis
   * answers: awaiting that before returning from a job puts it ahead of BullMQ's completion.
   */
  finish(taskId: string, finishedJson: string): Promise<void> {
    this.#enqueue({ keys: [this.#keys.taskEvents(taskId)], args: ['f', finishedJson] });
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
    const keys: string[] = [];
    const args: (string | number)[] = [this.#ttlSeconds, STREAM_MAX_LEN];
    for (const op of ops) {
      keys.push(...op.keys);
      args.push(...op.args);
    }
    const reply = this.#redis.flotillaBook(keys.length, ...keys, ...args);
    markSent?.();
    reply.then(
      (out) => {
        for (let i = 0; i < ops.length; i++) ops[i]?.listener?.started(out[i] === 1 ? 'running' : 'cancelled');
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        for (const op of ops) op.listener?.started(error);
        if (markSent) this.#onFinishError(error);
      },
    );
  };
}
