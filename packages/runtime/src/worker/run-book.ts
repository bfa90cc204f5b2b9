import {
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
 * with each start told whether its task had been cancelled.
 * KEYS: per op, its task's event stream, then its task's cancelled key.
 * ARGV: field, ttlSeconds, maxLen, then per op: '1' for a start (read the cancelled key) else '0', event JSON.
 * Returns per op: 1 when a start found its task cancelled, else 0.
 */
const bookScript = luaScript<number[]>(
  'flotillaRunBook',
  `
local field, ttl, maxlen = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 1, #KEYS / 2 do
  local events = KEYS[2 * i - 1]
  redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', field, ARGV[2 * i + 3])
  redis.call('EXPIRE', events, ttl)
  out[i] = ARGV[2 * i + 2] == '1' and redis.call('EXISTS', KEYS[2 * i]) or 0
end
return out`,
);

/** One queued write: a start hears back whether its task was cancelled; every op hears of a failure. */
interface Op {
  taskId: string;
  start: boolean;
  event: string;
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
    private readonly who: Pick<WorkerIdentity, 'role' | 'replica'>,
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
        taskId,
        start: true,
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
        taskId,
        start: false,
        event: encodeTaskEvent({ type: 'subtask_finished', taskId, subtaskId, role, replica, ...end }),
        done: () => resolve(),
        failed: reject,
      });
    });
    return { sent: this.#sent as Promise<void>, recorded };
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
    const keys: string[] = [];
    const args: string[] = [TASK_EVENT_FIELD, String(this.ttlSeconds), String(STREAM_MAX_LEN)];
    for (const op of ops) {
      keys.push(this.#keys.taskEvents(op.taskId), this.#keys.cancelled(op.taskId));
      args.push(op.start ? '1' : '0', op.event);
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
