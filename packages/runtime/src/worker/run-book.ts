import {
  type AttemptEnd,
  encodeTaskEvent,
  redisKeys,
  type StopReason,
  TASK_EVENT_FIELD,
  type Usage,
  type WorkerIdentity,
} from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { STREAM_MAX_LEN, TASK_EVENTS_TTL_SECONDS } from './events.js';
import { luaScript } from './scripts.js';

/**
 * One batch of run events, appended in order as one stream entry each (as appendTaskEvent does),
 * with each start told whether its task had been cancelled, and each attempt's end appended to the
 * role's outcomes stream with the version and replica that ran it.
 * KEYS: the role's outcomes stream, then per op: its task's event stream, then its task's cancelled key.
 * ARGV: field, ttlSeconds, maxLen, outcomesMaxLen, version, replica, then per op: its kind
 * ('start', 'finish' or 'attempt': an outcome alone), event JSON ('' for none), how the attempt
 * ended ('' for none), its ms.
 * Returns per op: 1 when a start found its task cancelled, else 0.
 */
const bookScript = luaScript<number[]>(
  'flotillaRunBook',
  `
local field, ttl, maxlen, outmax, version, replica = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local outcomes = KEYS[1]
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local kind, event, ended, ms = ARGV[4 * i + 3], ARGV[4 * i + 4], ARGV[4 * i + 5], ARGV[4 * i + 6]
  if kind ~= 'attempt' then
    local events = KEYS[2 * i]
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', field, event)
    redis.call('EXPIRE', events, ttl)
  end
  out[i] = kind == 'start' and redis.call('EXISTS', KEYS[2 * i + 1]) or 0
  if ended ~= '' then
    redis.call('XADD', outcomes, 'MAXLEN', '~', outmax, '*', 'v', version, 'r', replica, 'end', ended, 'ms', ms)
  end
end
return out`,
);

/**
 * Attempts kept per role in its outcomes stream: a rollout window's worth on a busy fleet (the
 * rollout reads the window, not the whole stream), a few hundred KiB of Redis.
 */
export const OUTCOMES_MAX_LEN = 10_000;

/** One queued write: a start hears back whether its task was cancelled; every op hears of a failure. */
interface Op {
  kind: 'start' | 'finish' | 'attempt';
  taskId: string;
  event: string;
  /** How the attempt ended, for the outcomes stream; undefined for a start. */
  ended?: AttemptEnd;
  ms?: number;
  done: (cancelled: boolean) => void;
  failed: (err: Error) => void;
}

/** How a run's start went: recorded and free to act, or its task had been cancelled by then. */
export type StartOutcome = 'running' | 'cancelled';

/** How a run ended, as its finished event says. */
export interface RunEnd {
  ok: boolean;
  stopReason: StopReason;
  usage: Usage;
  /** Fleet services a tool call found down during the run (SubtaskResult.degraded). */
  degraded?: string[];
}

/**
 * A run's entries in its task's event stream: `subtask_started` before any effect (the stream's
 * started events are the execution ledger; see readRunLedger) and `subtask_finished` before
 * BullMQ completes the job, so a reader of the stream never sees a subtask finish out of order.
 *
 * The writes of every run that starts or ends in one turn of the event loop go out together, as
 * one script call, at the end of that turn (setImmediate): a worker running many jobs pays one
 * command per turn, not two per job.
 *
 * Give it the connection the BullMQ Worker completes jobs on (runWorker creates it and hands it
 * to both). Redis runs one connection's commands in the order they were sent, so a processor that
 * awaits `finish(...).sent` before it returns has its finished event in the stream ahead of
 * BullMQ's completion of its job, without waiting for a reply.
 */
export class RunBook {
  readonly #keys: ReturnType<typeof redisKeys>;
  #ops: Op[] = [];
  #sent: Promise<void> | undefined;

  /** `ttlSeconds` is the events': they live as long as the task. */
  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly who: Pick<WorkerIdentity, 'role' | 'replica'> & { version?: string },
    private readonly ttlSeconds = TASK_EVENTS_TTL_SECONDS,
  ) {
    this.#keys = redisKeys(prefix);
  }

  /**
   * Appends a run's started event and reads whether the task had been cancelled. Rejects with
   * Redis's error: a run the ledger did not record must not act.
   */
  start(taskId: string, subtaskId: string, resumed = false): Promise<StartOutcome> {
    const { role, replica } = this.who;
    // A run resuming after it parked for an approval is the same execution: not another ledger entry.
    const type = resumed ? 'subtask_resumed' : 'subtask_started';
    return new Promise((resolve, reject) => {
      this.#enqueue({
        kind: 'start',
        taskId,
        event: encodeTaskEvent({ type, taskId, subtaskId, role, replica }),
        done: (cancelled) => resolve(cancelled ? 'cancelled' : 'running'),
        failed: reject,
      });
    });
  }

  /**
   * Appends a run's finished event. `sent` resolves once the write is on the connection (what
   * must precede the job's completion); `recorded` once Redis has answered.
   */
  finish(taskId: string, subtaskId: string, end: RunEnd): { sent: Promise<void>; recorded: Promise<void> } {
    const { role, replica } = this.who;
    const recorded = new Promise<void>((resolve, reject) => {
      this.#enqueue({
        kind: 'finish',
        taskId,
        event: encodeTaskEvent({ type: 'subtask_finished', taskId, subtaskId, role, replica, ...end }),
        ended: end.stopReason,
        ms: end.usage.ms,
        done: () => resolve(),
        failed: reject,
      });
    });
    return { sent: this.#sent as Promise<void>, recorded };
  }

  /**
   * Records an attempt that threw (the job failed; BullMQ may retry it) in the role's outcomes
   * stream, with the next batch. Its task's events are not touched: the retry or the fan-in speaks.
   */
  attemptFailed(ms: number, ended: AttemptEnd = 'failed'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#enqueue({ kind: 'attempt', taskId: '', event: '', ended, ms, done: () => resolve(), failed: reject });
    });
  }

  #enqueue(op: Op): void {
    this.#ops.push(op);
    this.#sent ??= new Promise((sent) =>
      setImmediate(() => {
        this.#flush();
        sent();
      }),
    );
  }

  #flush(): void {
    const ops = this.#ops;
    this.#ops = [];
    this.#sent = undefined;
    const outcomes = this.#keys.roleOutcomes(this.who.role);
    const keys: string[] = [outcomes];
    const args: string[] = [
      TASK_EVENT_FIELD,
      String(this.ttlSeconds),
      String(STREAM_MAX_LEN),
      String(OUTCOMES_MAX_LEN),
      this.who.version ?? 'unknown',
      this.who.replica,
    ];
    for (const op of ops) {
      // An outcome alone names no task: its key slots repeat the outcomes stream, which it writes.
      if (op.kind === 'attempt') keys.push(outcomes, outcomes);
      else keys.push(this.#keys.taskEvents(op.taskId), this.#keys.cancelled(op.taskId));
      args.push(op.kind, op.event, op.ended ?? '', String(Math.max(0, Math.round(op.ms ?? 0))));
    }
    bookScript(this.redis, keys, args).then(
      (cancelled) => {
        for (const [i, op] of ops.entries()) op.done(cancelled[i] === 1);
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        for (const op of ops) op.failed(error);
      },
    );
  }
}
