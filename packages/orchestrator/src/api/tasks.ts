import { type RoleInfo, TaskRequest, type TaskStatus } from '@flotilla/contracts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TaskService } from '../tasks/service.js';
import { parseBody, parsePart, parseQuery } from './problem.js';
import { DEFAULT_PAGE_SIZE, IdempotencyKeyHeader, type TaskAccepted, TaskIdParam, TaskListQuery } from './schemas.js';

const accepted = (taskId: string, status: TaskStatus): TaskAccepted => ({
  taskId,
  status,
  links: { self: `/v1/tasks/${taskId}`, events: `/v1/tasks/${taskId}/events` },
});

const taskIdOf = (request: FastifyRequest) =>
  parsePart(TaskIdParam, (request.params as { id?: unknown }).id, 'path.id');

export function registerTaskRoutes(
  v1: FastifyInstance,
  tasks: TaskService,
  roles: () => Promise<RoleInfo[]>,
  ownerOf: (request: FastifyRequest) => string,
  admission?: { admit(): Promise<void> },
): void {
  v1.post('/tasks', async (request, reply) => {
    const header = request.headers['idempotency-key'];
    const headerKey =
      header === undefined ? undefined : parsePart(IdempotencyKeyHeader, header, 'header.idempotency-key');
    const body = parseBody(TaskRequest, request.body);
    // After validation, so a bad request hears about its fields, not about the store's load.
    await admission?.admit();
    const { record, created } = await tasks.submit(body, headerKey, ownerOf(request));
    const location = `/v1/tasks/${record.taskId}`;
    // 202 for a new task; 200 for an identical replay of an idempotency key, which did no new work.
    reply.code(created ? 202 : 200).header('location', location);
    if (!created) reply.header('idempotent-replayed', 'true');
    return accepted(record.taskId, record.status);
  });

  v1.get('/tasks', async (request) => {
    const query = parseQuery(TaskListQuery, request.query);
    return tasks.list(ownerOf(request), {
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
      cursor: query.cursor,
      statuses: query.status,
    });
  });

  v1.get('/tasks/:id', async (request) => tasks.get(taskIdOf(request)));

  // A POST to a sub-resource, not DELETE: cancelling keeps the task (its status, answer so far and
  // events stay readable until its TTL), and DELETE would promise the resource is gone.
  v1.post('/tasks/:id/cancel', async (request, reply) => {
    const view = await tasks.cancel(taskIdOf(request));
    // 202: running subtasks are still winding down when this returns.
    reply.code(202);
    return view;
  });

  v1.get('/roles', async () => ({ roles: await roles() }));
}
