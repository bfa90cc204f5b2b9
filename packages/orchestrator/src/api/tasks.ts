import { IdempotencyKey, type RoleInfo, TaskRequest, type TaskStatus } from '@flotilla/contracts';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { TaskService } from '../tasks/service.js';
import { parseBody, parsePart } from './problem.js';

/** Task ids are the UUIDs this API hands out. */
export const TaskIdParam = z.uuid({ message: 'must be a task id (a UUID)' });

/** POST /v1/tasks's answer: where to look next. */
export const TaskAccepted = z.object({
  taskId: z.string(),
  status: z.string(),
  links: z.object({ self: z.string(), events: z.string() }),
});
export type TaskAccepted = z.infer<typeof TaskAccepted>;

const accepted = (taskId: string, status: TaskStatus): TaskAccepted => ({
  taskId,
  status,
  links: { self: `/v1/tasks/${taskId}`, events: `/v1/tasks/${taskId}/events` },
});

export function registerTaskRoutes(v1: FastifyInstance, tasks: TaskService, roles: () => Promise<RoleInfo[]>): void {
  v1.post('/tasks', async (request, reply) => {
    const header = request.headers['idempotency-key'];
    const headerKey = header === undefined ? undefined : parsePart(IdempotencyKey, header, 'header.idempotency-key');
    const body = parseBody(TaskRequest, request.body);
    const { record, created } = await tasks.submit(body, headerKey);
    const location = `/v1/tasks/${record.taskId}`;
    // 202 for a new task; 200 for an identical replay of an idempotency key, which did no new work.
    reply.code(created ? 202 : 200).header('location', location);
    if (!created) reply.header('idempotent-replayed', 'true');
    return accepted(record.taskId, record.status);
  });

  v1.get('/tasks/:id', async (request) => {
    const taskId = parsePart(TaskIdParam, (request.params as { id?: unknown }).id, 'path.id');
    return tasks.get(taskId);
  });

  v1.delete('/tasks/:id', async (request, reply) => {
    const taskId = parsePart(TaskIdParam, (request.params as { id?: unknown }).id, 'path.id');
    const view = await tasks.cancel(taskId);
    // 202: running subtasks are still winding down when this returns.
    reply.code(202);
    return view;
  });

  v1.get('/roles', async () => ({ roles: await roles() }));
}
