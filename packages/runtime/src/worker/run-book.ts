import { redisKeys, type StopReason, type Usage, type WorkerIdentity } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { STREAM_MAX_LEN, TASK_EVENTS_TTL_SECONDS } from './events.js';
import { luaScript } from './scripts.js';

/**
 * One batch. Per task with ops in it, in the order of its first op:
 *   KEYS  cancelled, events
 *   ARGV  flags (1: the batch starts runs, so read the cancelled key; 2: refresh the TTL), the
 *         task's events as one JSON array
 * Appends the events as one stream entry (field `events`; see parseStreamEntry). Returns per task
 * 1 if it had been cancelled (read only when it has starts), else 0. One XADD and one argument per
 * task rather than per event: on both sides a call or an argument costs more than the bytes it
 * carries (pnpm bench). The ledger is not a write of its own: it is the stream's subtask_started
 * events (see readRunLedger).
 */
const bookScript = luaScript<number[]>(
  'flotillaBook',
  `
local ttl, maxlen = ARGV[1], ARGV[2]
local out = {}
for k = 1, #KEYS, 2 do
  local flags, events = tonumber(ARGV[k + 2]), KEYS[k + 1]
  redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'events', ARGV[k + 3])
  if flags >= 2 then
    redis.call('EXPIRE', events, ttl)
  end
  out[#out + 1] = flags % 2 == 1 and redis.call('EXISTS', KEYS[k]) or 0
end
return out`,
);

/**
 * How often a worker refreshes a task's TTL while it works on the task. The TTL is days; a
 * refresh per batch would cost a call per batch for nothing.
 */
const TTL_REFRESH_MS = 60_000;

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

/** A batch's ops for one task. */
interface TaskOps {
  /** `"taskId":…,"subtaskId":` of the task's events. */
  idsJson: string;
  /** The events' JSON, comma-separated. */
  events: string;
  listeners: StartListener[];
}

/**
 * The subtask_started/finished events in each task's stream, which are also the execution ledger
 * (a run is one subtask_started; see readRunLedger). A worker pays this on every job, so it costs
 * the job no round trip and no write of its own:
 *
 * - It rides on BullMQ's own connection. Ops wait until the next command anyone sends on it
 *   (BullMQ completing a job, fetching one, extending locks), and go out just before it, as one
 *   EVALSHA in the same socket write. On a loopback connection the write syscall, which also wakes
 *   Redis, costs more than the script does (pnpm bench).
 * - Nothing waits longer than the event-loop turn: ops still pending then are flushed on their own.
 * - A job's events therefore reach Redis ahead of BullMQ's completion of that job, on one ordered
 *   connection, even while it is reconnecting (ioredis' offline queue keeps the order).
 *
 * With Redis Cluster the queue prefix needs a hash tag (as BullMQ's does), so that every task's
 * keys share one slot.
 */
export class RunBook {
  readonly #redis: Redis;
  readonly #keys: ReturnType<typeof redisKeys>;
  readonly #ttlSeconds: number;
  readonly #onFinishError: (err: unknown) => void;
  /** `,"role":…,"replica":…` of every event this worker appends. */
  readonly #whoJson: string;
  #pending: Op[] = [];
  #turnEndScheduled = false;
  /** When this worker last refreshed each task's TTL. */
  readonly #refreshedAt = new Map<string, number>();

  /**
   * `redis` is the connection BullMQ's worker sends its commands on; the book hooks its
   * sendCommand to go first. `onFinishError` hears of finished events Redis refused (the job's own
   * result still holds them). `ttlSeconds` is the events': they live as long as the task.
   */
  constructor(
    redis: Redis,
    prefix: string,
    who: Pick<WorkerIdentity, 'role' | 'replica'>,
    onFinishError: (err: unknown) => void,
    ttlSeconds = TASK_EVENTS_TTL_SECONDS,
  ) {
    this.#whoJson = `,"role":${JSON.stringify(who.role)},"replica":${JSON.stringify(who.replica)}`;
    this.#redis = redis;
    this.#keys = redisKeys(prefix);
    this.#onFinishError = onFinishError;
    this.#ttlSeconds = ttlSeconds;
    this.#rideAlong(redis);
  }

  /**
   * Appends a run's started event (its entry in the ledger), then tells `listener` whether the
   * task had been cancelled by then (the run should stop before any effect).
   */
  start(taskId: string, subtaskId: string, listener: StartListener): void {
    this.#enqueue({ kind: 's', taskId, subtaskId, listener });
  }

  /** Appends a run's finished event, ahead of any later command on the connection. */
  finish(taskId: string, subtaskId: string, end: RunEnd): void {
    this.#enqueue({ kind: 'f', taskId, subtaskId, end });
  }

  #enqueue(op: Op): void {
    this.#pending.push(op);
    if (!this.#turnEndScheduled) {
      this.#turnEndScheduled = true;
      setImmediate(this.#atTurnEnd);
    }
  }

  readonly #atTurnEnd = () => {
    this.#turnEndScheduled = false;
    this.#flush();
  };

  /**
   * Sends pending ops in front of every command on `redis`, corked so both leave in one write.
   * sendCommand is the one method every ioredis command goes through, scripts included; the cork
   * is released before it returns, so nothing is held back.
   */
  #rideAlong(redis: Redis): void {
    const send = redis.sendCommand;
    const book = this;
    redis.sendCommand = function (this: Redis, command, stream) {
      if (book.#pending.length === 0) return send.call(this, command, stream);
      const socket = this.status === 'ready' ? this.stream : undefined;
      socket?.cork();
      try {
        book.#flush();
        return send.call(this, command, stream);
      } finally {
        socket?.uncork();
      }
    };
  }

  #flush(): void {
    const ops = this.#pending;
    if (ops.length === 0) return;
    this.#pending = [];
    // One timestamp per batch: its events are appended in the same instant anyway.
    const now = Date.now();
    const at = `,"at":"${new Date(now).toISOString()}"}`;
    const tasks = new Map<string, TaskOps>();
    for (const op of ops) {
      let t = tasks.get(op.taskId);
      if (!t) {
        t = { idsJson: `"taskId":${JSON.stringify(op.taskId)},"subtaskId":`, events: '', listeners: [] };
        tasks.set(op.taskId, t);
      }
      // The TaskEvent JSON, written out by hand: JSON.stringify of the whole event was the
      // costliest line of a job (pnpm bench). Field order as eventJson() writes it.
      const ids = `${t.idsJson}${JSON.stringify(op.subtaskId)}${this.#whoJson}`;
      const sep = t.events === '' ? '' : ',';
      if (op.kind === 's') {
        t.listeners.push(op.listener);
        t.events += `${sep}{"type":"subtask_started",${ids}${at}`;
      } else {
        const { ok, stopReason, usage: u } = op.end;
        const usage = `{"steps":${u.steps},"toolCalls":${u.toolCalls},"tokens":${u.tokens},"ms":${u.ms}}`;
        t.events += `${sep}{"type":"subtask_finished",${ids},"ok":${ok},"stopReason":"${stopReason}","usage":${usage}${at}`;
      }
    }
    const k = this.#keys;
    const keys: string[] = [];
    const args: (string | number)[] = [this.#ttlSeconds, STREAM_MAX_LEN];
    for (const [taskId, t] of tasks) {
      keys.push(k.cancelled(taskId), k.taskEvents(taskId));
      args.push((t.listeners.length > 0 ? 1 : 0) + (this.#refreshDue(taskId, now) ? 2 : 0), `[${t.events}]`);
    }
    bookScript(this.#redis, keys, args).then(
      (out) => {
        let i = 0;
        for (const t of tasks.values()) {
          const outcome = out[i++] === 1 ? 'cancelled' : 'running';
          for (const listener of t.listeners) listener.started(outcome);
        }
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        // Refused TTL refreshes are retried with the task's next batch.
        for (const taskId of tasks.keys()) this.#refreshedAt.delete(taskId);
        for (const t of tasks.values()) for (const listener of t.listeners) listener.started(error);
        if (ops.some((op) => op.kind === 'f')) this.#onFinishError(error);
      },
    );
  }

  /** True once per TTL_REFRESH_MS per task; forgets tasks it has not seen for that long. */
  #refreshDue(taskId: string, now: number): boolean {
    const last = this.#refreshedAt.get(taskId);
    if (last !== undefined && now - last < TTL_REFRESH_MS) return false;
    if (this.#refreshedAt.size >= 10_000) {
      for (const [id, at] of this.#refreshedAt) if (now - at >= TTL_REFRESH_MS) this.#refreshedAt.delete(id);
    }
    this.#refreshedAt.set(taskId, now);
    return true;
  }
}
