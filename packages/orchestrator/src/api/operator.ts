import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError } from '../errors.js';
import type { OperatorService } from '../operator/service.js';
import {
  AdminTaskListQuery,
  ApprovalDecisionBody,
  ApprovalIdParam,
  ApprovalListQuery,
  FailedJobQuery,
  JobIdParam,
  KillSwitchPatch,
  RoleParam,
  sinceMs,
  VersionsQuery,
} from './operator-schemas.js';
import { fieldErrors, parseBody, parsePart, parseQuery } from './problem.js';
import { DEFAULT_PAGE_SIZE, TaskIdParam } from './schemas.js';

const params = (request: FastifyRequest) => request.params as Record<string, unknown>;

/**
 * The operator's routes (admin scope): the kill switch, replicas, queues, failed jobs and their
 * retry, and every tenant's tasks. `operatorOf` names the admin key, which is who the audit records.
 */
export function registerOperatorRoutes(
  v1: FastifyInstance,
  operator: OperatorService,
  operatorOf: (request: FastifyRequest) => string,
): void {
  const admin = { config: { scope: 'admin' as const } };

  v1.get('/admin/kill-switch', admin, async () => operator.killSwitch());

  // PATCH: fields left out keep their value, so one operator stopping a tool does not undo another's `global`.
  v1.patch('/admin/kill-switch', admin, async (request) => {
    const { reason, ...patch } = parseBody(KillSwitchPatch, request.body);
    return operator.setKillSwitch(patch, { by: operatorOf(request), reason });
  });

  v1.get('/admin/replicas', admin, async () => ({ roles: await operator.replicas() }));

  v1.get('/admin/queues', admin, async () => ({ queues: await operator.queueStats() }));

  v1.get('/admin/queues/:role/failed', admin, async (request) => {
    const role = parsePart(RoleParam, params(request).role, 'path.role');
    const query = parseQuery(FailedJobQuery, request.query);
    return operator.failedJobs(role, { offset: query.offset ?? 0, limit: query.limit ?? DEFAULT_PAGE_SIZE });
  });

  v1.get('/admin/queues/:role/versions', admin, async (request) => {
    const role = parsePart(RoleParam, params(request).role, 'path.role');
    const query = parseQuery(VersionsQuery, request.query);
    return operator.versionFigures(role, sinceMs(query.since));
  });

  // 202: the job is back in its queue, not yet run.
  v1.post('/admin/queues/:role/jobs/:jobId/retry', admin, async (request, reply) => {
    const role = parsePart(RoleParam, params(request).role, 'path.role');
    const jobId = parsePart(JobIdParam, params(request).jobId, 'path.jobId');
    const retried = await operator.retryJob(role, jobId, operatorOf(request));
    reply.code(202);
    return retried;
  });

  v1.get('/admin/tasks', admin, async (request) => {
    const query = parseQuery(AdminTaskListQuery, request.query);
    return operator.listTasks(query.owner, {
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
      cursor: query.cursor,
      statuses: query.status,
    });
  });

  v1.get('/admin/tasks/:id', admin, async (request) =>
    operator.getTask(parsePart(TaskIdParam, params(request).id, 'path.id')),
  );

  v1.get('/admin/approvals', admin, async (request) => {
    const query = parseQuery(ApprovalListQuery, request.query);
    return operator.approvals.list({
      status: query.status,
      offset: query.offset ?? 0,
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
    });
  });

  v1.get('/admin/approvals/:id', admin, async (request) =>
    operator.approvals.get(parsePart(ApprovalIdParam, params(request).id, 'path.id')),
  );

  v1.post('/admin/approvals/:id/decision', admin, async (request) => {
    const id = parsePart(ApprovalIdParam, params(request).id, 'path.id');
    // 400 rather than the task API's 422: the approvals contract the CLI and dashboard code against says so.
    const body = ApprovalDecisionBody.safeParse(request.body);
    if (!body.success) {
      const errors = fieldErrors(body.error);
      throw new BadRequestError(
        `the decision is invalid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`.slice(0, 500),
        errors,
      );
    }
    return operator.approvals.decide(id, body.data.decision, body.data.reason, operatorOf(request));
  });
}
