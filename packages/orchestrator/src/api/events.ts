import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { decodeTaskEventEntry, type TaskEvent, TERMINAL_TASK_STATUSES } from '@flotilla/contracts';
import { duplicateConnection } from '@flotilla/runtime';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { NotFoundError, TooManyRequestsError } from '../errors.js';
import type { TaskStore } from '../tasks/store.js';
import { parsePart, toJson } from './problem.js';
import { LastEventIdHeader, TaskIdParam } from './schemas.js';

export interface EventStreamOptions {
  store: TaskStore;
  /** Each client gets its own duplicate of this connection: XREAD BLOCK holds a connection while it waits. */
  redis: Redis;
  /** A comment line is sent this often while nothing happens, so proxies keep the connection. Default 15000. */
  heartbeatMs?: number;
  /** Concurrent streams per replica (each holds a Redis connection). Default 500. */
  maxClients?: number;
  /** The requesting tenant; another tenant's task is 404. */
  ownerOf: (request: FastifyRequest) => string;
}

const TERMINAL_EVENTS = new Set<TaskEvent['type']>(['completed', 'failed', 'cancelled']);

/**
 * GET /v1/tasks/:id/events: Server-Sent Events tailing the task's Redis stream, one event per
 * entry. The SSE id is the entry's stream id, so a reconnecting client resumes after the last
 * event it saw (Last-Event-ID).
 * The stream ends after a terminal event (completed, failed, cancelled).
 */
export function registerEventRoutes(v1: FastifyInstance, options: EventStreamOptions): { closeAll(): void } {
  const { store } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxClients = options.maxClients ?? 500;
  const open = new Set<() => void>();

  v1.get('/tasks/:id/events', { config: { scope: 'tasks' } }, async (request, reply) => {
    const taskId = parsePart(TaskIdParam, (request.params as { id?: unknown }).id, 'path.id');
    const lastEventId = request.headers['last-event-id'];
    const after = lastEventId === undefined ? '0-0' : parsePart(LastEventIdHeader, lastEventId, 'header.last-event-id');
    const record = await store.get(taskId);
    if (!record || record.owner !== options.ownerOf(request))
      throw new NotFoundError(`task ${taskId} does not exist (or expired)`);
    if (open.size >= maxClients)
      throw new TooManyRequestsError('too many open event streams; retry later', heartbeatMs / 1000);

    reply.hijack();
    const res = reply.raw;
    // What hooks set on the reply (the rate limiter's headers) still goes out after the hijack.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });

    const conn = duplicateConnection(options.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
    conn.on('error', () => {});
    const done = new AbortController();
    const stop = () => {
      if (done.signal.aborted) return;
      done.abort();
      // disconnect() also ends an XREAD BLOCK in flight, which is what frees this loop.
      conn.disconnect();
      if (!res.writableEnded) res.end();
    };
    open.add(stop);
    res.on('close', stop);

    try {
      await write(res, `retry: 2000\n\n`, done.signal);
      await conn.connect();
      let cursor = after;
      const send = async (id: string, fields: string[]) => {
        cursor = id;
        const event = decodeTaskEventEntry(fields);
        if (!event) return false;
        await write(res, `id: ${id}\nevent: ${event.type}\ndata: ${toJson(event)}\n\n`, done.signal);
        return TERMINAL_EVENTS.has(event.type);
      };
      // A finished task gets no new decisions: replay what the client hasn't seen and end, rather than
      // block on a stream that may never grow (a client resuming after the terminal event).
      if (TERMINAL_TASK_STATUSES.includes(record.status)) {
        for (const [id, fields] of await conn.xrange(store.keys.taskEvents(taskId), `(${cursor}`, '+')) {
          if (await send(id, fields)) break;
        }
        return;
      }
      while (!done.signal.aborted) {
        const batch = (await conn.xread(
          'COUNT',
          100,
          'BLOCK',
          heartbeatMs,
          'STREAMS',
          store.keys.taskEvents(taskId),
          cursor,
        )) as [string, [string, string[]][]][] | null;
        if (done.signal.aborted) break;
        if (!batch) {
          await write(res, ': heartbeat\n\n', done.signal);
          // The task expired while the client waited: nothing more will come.
          if ((await conn.exists(store.keys.task(taskId))) === 0) break;
          continue;
        }
        for (const [id, fields] of batch[0]?.[1] ?? []) {
          if (await send(id, fields)) return;
        }
      }
    } catch (err) {
      if (!done.signal.aborted)
        request.log.warn({ err: { message: (err as Error).message }, taskId }, 'event stream ended by an error');
    } finally {
      open.delete(stop);
      stop();
    }
  });

  return {
    closeAll: () => {
      for (const stop of [...open]) stop();
    },
  };
}

/** Writes with backpressure: waits for 'drain' when the socket's buffer is full, unless the stream stops. */
async function write(res: ServerResponse, chunk: string, signal: AbortSignal): Promise<void> {
  if (signal.aborted || res.writableEnded) return;
  if (!res.write(chunk)) await once(res, 'drain', { signal }).catch(() => {});
}
