import {
  Approval,
  RoleInfo,
  TaskEvent,
  TaskPage,
  TaskRequest,
  TaskView,
  VersionFiguresList,
} from '@flotilla/contracts';
import { LivezBody, ReadyzBody, StartupzBody } from '@flotilla/runtime';
import { z } from 'zod';
import {
  AdminTaskListQuery,
  AdminTaskView,
  ApprovalDecisionBody,
  ApprovalIdParam,
  ApprovalListQuery,
  ApprovalPage,
  FailedJobPage,
  FailedJobQuery,
  JobIdParam,
  JobRetried,
  KillSwitchPatch,
  KillSwitchView,
  QueueList,
  ReplicaList,
  RoleParam,
  VersionsQuery,
} from './operator-schemas.js';
import {
  IdempotencyKeyHeader,
  LastEventIdHeader,
  Problem,
  TaskAccepted,
  TaskEventMessage,
  TaskIdParam,
  TaskListQuery,
} from './schemas.js';

type Json = Record<string, unknown>;

/**
 * A zod schema as JSON Schema. Bodies and headers are documented as they are accepted (`input`),
 * responses as they are sent; query values as what they mean once parsed (`limit` an integer,
 * though it arrives as digits).
 */
const schema = (s: z.ZodType, io: 'input' | 'output' = 'output'): Json => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Json;
  return rest;
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const json = (schemaObject: Json) => ({ 'application/json': { schema: schemaObject } });

const problem = (description: string, headers: Json = {}) => ({
  description,
  ...(Object.keys(headers).length ? { headers } : {}),
  content: { 'application/problem+json': { schema: ref('Problem') } },
});

/** What every /v1 operation may answer besides its own outcomes. */
const v1Problems = {
  '401': problem('Missing, unknown or revoked API key', { 'WWW-Authenticate': header('WWWAuthenticate') }),
  '403': problem('The API key is valid but of the other scope (a tasks key on an admin operation, or the reverse)'),
  '429': problem('Rate limit exceeded (per client, shared by every replica)', { 'Retry-After': header('RetryAfter') }),
  '500': problem('A bug: the error was logged, its details are not sent'),
  '503': problem(
    'Redis is unreachable, this replica is shutting down, or (new tasks only) the task store is above its high-water mark (ADMISSION_REDIS_HIGH_WATER); retry after Retry-After seconds',
    {
      'Retry-After': header('RetryAfter'),
    },
  ),
};

/** Request bodies: what fastify's JSON parser and the body limit refuse before any handler runs. */
const bodyProblems = {
  '400': problem('The body is not valid JSON, is empty while Content-Type says JSON, or has a `__proto__` key'),
  '413': problem('The body is larger than the server’s limit (BODY_LIMIT_BYTES, default 64 KiB)'),
  '415': problem('The body is not application/json'),
};

const rateLimitHeaders = {
  'X-RateLimit-Limit': header('RateLimitLimit'),
  'X-RateLimit-Remaining': header('RateLimitRemaining'),
  'X-RateLimit-Reset': header('RateLimitReset'),
};

/** Every /v1 response may carry the rate limiter's headers (absent when the limiter is off). */
const withRateLimitHeaders = (responses: Record<string, Json>) =>
  Object.fromEntries(
    Object.entries(responses).map(([status, r]) => [
      status,
      { ...r, headers: { ...rateLimitHeaders, ...((r.headers as Json | undefined) ?? {}) } },
    ]),
  );

/**
 * A /v1 operation: its own responses (which win over the shared ones), in status order, and the
 * scope its key needs (OpenAPI 3.1+ lets a non-OAuth requirement list role names: `bearer: [tasks]`).
 */
const v1 = (scope: 'tasks' | 'admin', operation: Json & { responses: Record<string, Json> }) => {
  const responses: Record<string, Json> = { ...v1Problems, ...operation.responses };
  const sorted = Object.fromEntries(
    Object.keys(responses)
      .sort()
      .map((status) => [status, responses[status] as Json]),
  );
  return { ...operation, security: [{ bearer: [scope] }], responses: withRateLimitHeaders(sorted) };
};

const probe = (summary: string, body: z.ZodType, ok: string, notOk?: string) => ({
  summary,
  security: [],
  responses: {
    '200': { description: ok, content: json(schema(body)) },
    ...(notOk ? { '503': { description: notOk, content: json(schema(body)) } } : {}),
  },
});

/** The runtime's probe routes (registerHealthRoutes), open like the document itself. */
const PROBE_PATHS = {
  '/livez': { get: { operationId: 'livez', ...probe('Liveness', LivezBody, 'Alive', 'The event loop lags') } },
  '/readyz': {
    get: { operationId: 'readyz', ...probe('Readiness', ReadyzBody, 'Ready', 'Not ready; reasons say why') },
  },
  '/startupz': {
    get: { operationId: 'startupz', ...probe('Startup', StartupzBody, 'Started', 'Still starting') },
  },
  '/metrics': {
    get: {
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      security: [],
      responses: {
        '200': {
          description: 'Prometheus text exposition format',
          content: { 'text/plain': { schema: { type: 'string' } } },
        },
      },
    },
  },
};

/** The operator's operations (admin scope). */
const OPERATOR_PATHS = {
  '/v1/admin/kill-switch': {
    get: v1('admin', {
      operationId: 'getKillSwitch',
      summary: 'The fleet’s kill switch, with who changed it last and why (admin)',
      responses: { '200': { description: 'The shared state', content: json(ref('KillSwitch')) } },
    }),
    patch: v1('admin', {
      operationId: 'setKillSwitch',
      summary: 'Stop or restart every tool, write tools, or named tools, fleet-wide (admin)',
      description:
        'Fields left out keep their value; `tools` replaces the list. Every worker replica applies the change as ' +
        'soon as it is announced (well under a second) and a replica that cannot read the state refuses every ' +
        'tool call. The change, the admin key’s name and the reason are audited (a log line and the operator ' +
        'actions stream) and counted in /metrics (flotilla_operator_actions, flotilla_kill_switch).',
      requestBody: { required: true, content: json(ref('KillSwitchPatch')) },
      responses: {
        '200': { description: 'The state after the change', content: json(ref('KillSwitch')) },
        ...bodyProblems,
        '422': problem('The body does not match KillSwitchPatch (a reason is required); errors[] names each field'),
      },
    }),
  },
  '/v1/admin/replicas': {
    get: v1('admin', {
      operationId: 'listReplicas',
      summary: 'Every registered role and replica: live or not, heartbeat age, image version (admin)',
      responses: { '200': { description: 'Roles and their replicas', content: json(ref('ReplicaList')) } },
    }),
  },
  '/v1/admin/queues': {
    get: v1('admin', {
      operationId: 'listQueues',
      summary: 'Each role’s queue: job counts, throughput, p50/p95 job time (admin)',
      description:
        'Counts are BullMQ’s (getJobCounts). Throughput is BullMQ’s per-minute metrics, newest minute first; ' +
        'BullMQ closes a minute when a later job finishes, so a queue that went quiet shows its last busy ' +
        'minutes. jobMs is over the latest completed jobs (up to 100), from when a worker took each to when it finished.',
      responses: { '200': { description: 'One entry per registered role', content: json(ref('QueueList')) } },
    }),
  },
  '/v1/admin/queues/{role}/failed': {
    parameters: [param('Role')],
    get: v1('admin', {
      operationId: 'listFailedJobs',
      summary: 'A role’s failed jobs with the reason each failed, newest first (admin)',
      parameters: [param('Offset'), param('JobLimit')],
      responses: {
        '200': { description: 'A page of failed jobs', content: json(ref('FailedJobPage')) },
        '400': problem('The role or a query parameter is malformed; errors[] names it'),
        '404': problem('No such role has registered'),
      },
    }),
  },
  '/v1/admin/queues/{role}/versions': {
    parameters: [param('Role')],
    get: v1('admin', {
      operationId: 'listVersionFigures',
      summary: 'Per image version, how a role’s job attempts ended over a window: the canary’s figures (admin)',
      description:
        'From the attempts workers record as they end (each with its SERVICE_VERSION and replica). An error is an ' +
        'attempt that threw (the job failed; BullMQ may retry it) or a run that completed with a fault stop reason ' +
        '(runtime_error, tool_error). Budget stops, policy_denied, kill_switch, cancelled and invalid_input are not ' +
        'the image’s fault and are not errors. p50/p95 are attempt times in ms. Up to the newest 10,000 attempts per role.',
      parameters: [param('Since')],
      responses: {
        '200': { description: 'One entry per version seen in the window', content: json(ref('VersionFiguresList')) },
        '400': problem('The role or since is malformed; errors[] names it'),
        '404': problem('No such role has registered'),
      },
    }),
  },
  '/v1/admin/queues/{role}/jobs/{jobId}/retry': {
    parameters: [param('Role'), param('JobId')],
    post: v1('admin', {
      operationId: 'retryJob',
      summary: 'Run a failed job again, with its attempts reset (admin)',
      description: 'Audited with the admin key’s name. Takes no body.',
      responses: {
        '202': { description: 'The job is waiting in its queue again', content: json(ref('JobRetried')) },
        ...bodyProblems,
        '400': problem('The role or job id is malformed; or a body was sent that is not valid JSON'),
        '404': problem('No such role, or no such job in its queue (or it expired)'),
        '409': problem('The job is not failed (waiting, running or completed)'),
      },
    }),
  },
  '/v1/admin/tasks': {
    get: v1('admin', {
      operationId: 'adminListTasks',
      summary: 'A tenant’s tasks, newest first, for the operator (admin)',
      description: 'The tenant’s own listing (GET /v1/tasks), read with an admin key; the same cursors and filter.',
      parameters: [param('Owner'), param('Limit'), param('Cursor'), param('Status')],
      responses: {
        '200': { description: 'A page of tasks', content: json(ref('TaskPage')) },
        '400': problem('A query parameter is missing or malformed; errors[] names it'),
      },
    }),
  },
  '/v1/admin/approvals': {
    get: v1('admin', {
      operationId: 'listApprovals',
      summary: 'Tool calls waiting for (or past) an operator’s decision, newest first (admin)',
      description:
        'Without `status`, the pending approvals come first, then every other. A tool defined with ' +
        '`requiresApproval` (or matched by a worker’s TOOLS_REQUIRE_APPROVAL) parks its subtask until one is decided ' +
        'or APPROVAL_TIMEOUT_S passes (then it is timed_out and the call is denied). Kept a week.',
      parameters: [param('ApprovalStatus'), param('ApprovalOffset'), param('ApprovalLimit')],
      responses: {
        '200': { description: 'A page of approvals', content: json(ref('ApprovalPage')) },
        '400': problem('A query parameter is malformed; errors[] names it'),
      },
    }),
  },
  '/v1/admin/approvals/{id}': {
    parameters: [param('ApprovalId')],
    get: v1('admin', {
      operationId: 'getApproval',
      summary: 'One approval (admin)',
      responses: {
        '200': { description: 'The approval', content: json(ref('Approval')) },
        '400': problem('The id is malformed'),
        '404': problem('No such approval, or it expired'),
      },
    }),
  },
  '/v1/admin/approvals/{id}/decision': {
    parameters: [param('ApprovalId')],
    post: v1('admin', {
      operationId: 'decideApproval',
      summary: 'Approve or deny a tool call that waits for a person (admin)',
      description:
        'The first decision wins; the parked subtask resumes at once on any replica, exactly once. A denial ' +
        'reaches the model as the tool’s result (approval_denied, with the reason) and the run goes on without ' +
        'it. Audited with the admin key’s name (a log line and the operator actions stream).',
      requestBody: { required: true, content: json(ref('ApprovalDecision')) },
      responses: {
        '200': { description: 'The approval, now decided', content: json(ref('Approval')) },
        ...bodyProblems,
        '400': problem(
          'The id is malformed, or the body is not valid JSON or not an ApprovalDecision (errors[] names each field)',
        ),
        '404': problem('No such approval, or it expired'),
        '409': problem(
          'Already decided (FLOTILLA_APPROVAL_DECIDED): by another operator, the timeout or a cancel; detail says who and what',
        ),
      },
    }),
  },
  '/v1/admin/tasks/{id}': {
    parameters: [param('TaskId')],
    get: v1('admin', {
      operationId: 'adminGetTask',
      summary: 'Any tenant’s task, with its owner (admin)',
      responses: {
        '200': { description: 'The task', content: json(ref('AdminTaskView')) },
        '400': problem('The id is not a UUID'),
        '404': problem('No such task, or it expired'),
      },
    }),
  },
};

/** The links from a created task to what can be done with it (and contract testers follow). */
const taskLinks = {
  GetTask: { operationId: 'getTask', parameters: { id: '$response.body#/taskId' } },
  CancelTask: { operationId: 'cancelTask', parameters: { id: '$response.body#/taskId' } },
  StreamTaskEvents: { operationId: 'streamTaskEvents', parameters: { id: '$response.body#/taskId' } },
};

const DESCRIPTION = `Submit goals, follow their progress, cancel them.

- Errors are RFC 9457 problem documents (\`application/problem+json\`) with a stable \`code\` and, for bad input, \`errors[]\` naming each field (\`goal\`, \`path.id\`, \`header.idempotency-key\`, \`query.limit\`).
- A method a path does not list answers **405** with \`Allow\`; a path not listed here answers **404**. HEAD and OPTIONS are not served (405).
- \`Accept\` is not negotiated: each response has the one media type listed here (no 406).
- Request bodies are UTF-8 JSON. A lone surrogate in a string (\`"\\ud800"\`, valid JSON but not Unicode) is accepted and replaced by U+FFFD, as WebIDL's USVString does; every JSON response is I-JSON (RFC 7493).
- /v1 requires \`Authorization: Bearer <API key>\`. Each key is a tenant: it sees and cancels only its own tasks (another tenant's task is **404**, like a missing one), its idempotency keys are its own, and it has its own rate limit. A key has one scope: \`tasks\` for the task operations, \`admin\` for the operator's (\`/v1/roles\`, \`/v1/admin/...\`); the other scope's operations answer **403**. The probes and this document are open.
- Node's HTTP server itself answers what never reaches the API, without a problem body: malformed HTTP (400), headers over 16 KiB (431), a request not received within the request timeout, 30 s by default (408).`;

/**
 * The API's OpenAPI 3.2 document, built from the same zod schemas the handlers parse with, so the
 * document cannot drift from what the server accepts and sends. 3.2 because it can describe an
 * event stream item by item (`itemSchema`); 3.1 can't say what GET /v1/tasks/{id}/events sends.
 */
export function openApiDocument(version: string, { probes = true }: { probes?: boolean } = {}): Json {
  const eventMessage = schema(TaskEventMessage) as Json & { properties: Record<string, Json> };
  eventMessage.properties.data = { ...eventMessage.properties.data, contentSchema: ref('TaskEvent') };

  return {
    openapi: '3.2.0',
    info: { title: 'flotilla orchestrator', version, description: DESCRIPTION },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key (`pnpm keys add <name>`). Each key is a tenant; an operation lists the scope its key needs (tasks or admin).',
        },
      },
      schemas: {
        TaskRequest: schema(TaskRequest, 'input'),
        TaskAccepted: schema(TaskAccepted),
        TaskView: schema(TaskView),
        TaskPage: schema(TaskPage),
        TaskEvent: schema(TaskEvent),
        TaskEventMessage: eventMessage,
        RoleList: schema(z.object({ roles: z.array(RoleInfo) })),
        KillSwitch: schema(KillSwitchView),
        KillSwitchPatch: schema(KillSwitchPatch, 'input'),
        ReplicaList: schema(ReplicaList),
        QueueList: schema(QueueList),
        FailedJobPage: schema(FailedJobPage),
        VersionFiguresList: schema(VersionFiguresList),
        JobRetried: schema(JobRetried),
        AdminTaskView: schema(AdminTaskView),
        Approval: schema(Approval),
        ApprovalPage: schema(ApprovalPage),
        ApprovalDecision: schema(ApprovalDecisionBody, 'input'),
        Problem: schema(Problem),
        Livez: schema(LivezBody),
        Readyz: schema(ReadyzBody),
        Startupz: schema(StartupzBody),
      },
      parameters: {
        TaskId: { name: 'id', in: 'path', required: true, schema: schema(TaskIdParam) },
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          schema: schema(IdempotencyKeyHeader),
          example: 'order-4711',
        },
        LastEventId: {
          name: 'Last-Event-ID',
          in: 'header',
          required: false,
          schema: schema(LastEventIdHeader, 'input'),
          example: '1700000000000-0',
        },
        Role: { name: 'role', in: 'path', required: true, schema: schema(RoleParam) },
        JobId: { name: 'jobId', in: 'path', required: true, schema: schema(JobIdParam) },
        Offset: { name: 'offset', in: 'query', required: false, schema: schema(FailedJobQuery.offset) },
        JobLimit: { name: 'limit', in: 'query', required: false, schema: schema(FailedJobQuery.limit) },
        ApprovalId: { name: 'id', in: 'path', required: true, schema: schema(ApprovalIdParam) },
        ApprovalStatus: { name: 'status', in: 'query', required: false, schema: schema(ApprovalListQuery.status) },
        ApprovalOffset: { name: 'offset', in: 'query', required: false, schema: schema(ApprovalListQuery.offset) },
        ApprovalLimit: { name: 'limit', in: 'query', required: false, schema: schema(ApprovalListQuery.limit) },
        Since: { name: 'since', in: 'query', required: false, schema: schema(VersionsQuery.since) },
        Owner: { name: 'owner', in: 'query', required: true, schema: schema(AdminTaskListQuery.owner) },
        Limit: { name: 'limit', in: 'query', required: false, schema: schema(TaskListQuery.limit) },
        Cursor: { name: 'cursor', in: 'query', required: false, schema: schema(TaskListQuery.cursor) },
        Status: {
          name: 'status',
          in: 'query',
          required: false,
          style: 'form',
          explode: true,
          schema: schema(TaskListQuery.status),
        },
      },
      headers: {
        Location: { description: 'The task’s URL', required: true, schema: { type: 'string' } },
        IdempotentReplayed: {
          description: 'Present on a replay of an idempotency key',
          required: true,
          schema: { type: 'string', const: 'true' },
        },
        RetryAfter: { description: 'Seconds to wait', required: true, schema: { type: 'integer', minimum: 1 } },
        WWWAuthenticate: { required: true, schema: { type: 'string' } },
        Allow: { description: 'The methods this path answers', required: true, schema: { type: 'string' } },
        RateLimitLimit: { description: 'Requests allowed per window', schema: { type: 'integer', minimum: 0 } },
        RateLimitRemaining: { description: 'Requests left in this window', schema: { type: 'integer', minimum: 0 } },
        RateLimitReset: { description: 'Seconds until the window resets', schema: { type: 'integer', minimum: 0 } },
      },
      responses: {
        MethodNotAllowed: problem('The path exists; the method does not. Allow lists the ones it answers.', {
          Allow: header('Allow'),
        }),
        NoRoute: problem('No such path'),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/tasks': {
        post: v1('tasks', {
          operationId: 'submitTask',
          summary: 'Submit a goal',
          parameters: [param('IdempotencyKey')],
          requestBody: { required: true, content: json(ref('TaskRequest')) },
          responses: {
            '202': {
              description: 'Accepted: the task is queued',
              headers: { Location: header('Location') },
              content: json(ref('TaskAccepted')),
              links: taskLinks,
            },
            '200': {
              description: 'A replay of an idempotency key with the same request: the task it named, no new work',
              headers: { Location: header('Location'), 'Idempotent-Replayed': header('IdempotentReplayed') },
              content: json(ref('TaskAccepted')),
              links: taskLinks,
            },
            ...bodyProblems,
            '400': problem(`${bodyProblems['400'].description}; or the Idempotency-Key header is malformed`),
            '409': problem(
              'The caller used this idempotency key for a different request (the other task is not named), or the Idempotency-Key header and the body’s idempotencyKey differ',
            ),
            '422': problem('The body does not match TaskRequest; errors[] names each field'),
            '429': problem(
              'Rate limit exceeded (per client, shared by every replica), or the client already has TENANT_MAX_OPEN_TASKS queued and running tasks',
              { 'Retry-After': header('RetryAfter') },
            ),
          },
        }),
        get: v1('tasks', {
          operationId: 'listTasks',
          summary: 'The caller’s tasks, newest first',
          description:
            'Cursor pagination: pass the previous page’s nextCursor as cursor until it is null. With a status filter a ' +
            'page may hold fewer than limit tasks (even none) while nextCursor is set; keep following it. Tasks that ' +
            'expired (TASK_TTL_SECONDS) are not listed.',
          parameters: [param('Limit'), param('Cursor'), param('Status')],
          responses: {
            '200': { description: 'A page of tasks', content: json(ref('TaskPage')) },
            '400': problem('A query parameter is malformed; errors[] names it'),
          },
        }),
      },
      '/v1/tasks/{id}': {
        parameters: [param('TaskId')],
        get: v1('tasks', {
          operationId: 'getTask',
          summary: 'A task: status, plan, subtasks, answer, usage',
          responses: {
            '200': { description: 'The task', content: json(ref('TaskView')) },
            '400': problem('The id is not a UUID'),
            '404': problem('No such task of this tenant’s, or it expired'),
          },
        }),
      },
      '/v1/tasks/{id}/cancel': {
        parameters: [param('TaskId')],
        post: v1('tasks', {
          operationId: 'cancelTask',
          summary: 'Cancel a task',
          description:
            'Stops the task: no new subtasks start, running ones see their AbortSignal fire. The task stays readable. ' +
            'Cancelling a cancelled task changes nothing and answers 202 again. Takes no body.',
          responses: {
            '202': { description: 'Cancelled; running subtasks are stopping', content: json(ref('TaskView')) },
            ...bodyProblems,
            '400': problem(`The id is not a UUID; or a body was sent that is not valid JSON`),
            '404': problem('No such task of this tenant’s, or it expired'),
            '409': problem('The task already completed or failed'),
          },
        }),
      },
      '/v1/tasks/{id}/events': {
        parameters: [param('TaskId')],
        get: v1('tasks', {
          operationId: 'streamTaskEvents',
          summary: 'Progress as Server-Sent Events',
          description:
            'Replays the task’s events from the start (or after Last-Event-ID), then follows new ones, and ends after ' +
            'the terminal event (completed, failed or cancelled). Each event’s `event` is its type and `data` one ' +
            'TaskEvent as JSON, and its `id` the event’s stream id, which a reconnecting client sends back as ' +
            'Last-Event-ID to resume after it. The stream opens with `retry: 2000` and sends a `: heartbeat` comment while nothing happens.',
          parameters: [param('LastEventId')],
          responses: {
            '200': {
              description: 'An event stream of TaskEvent',
              content: { 'text/event-stream': { itemSchema: ref('TaskEventMessage') } },
            },
            '400': problem('The id is not a UUID, or Last-Event-ID is not an id this server sends'),
            '404': problem('No such task of this tenant’s, or it expired'),
            '429': problem('Rate limit exceeded, or this replica has too many streams open (SSE_MAX_CLIENTS)', {
              'Retry-After': header('RetryAfter'),
            }),
          },
        }),
      },
      '/v1/roles': {
        get: v1('admin', {
          operationId: 'listRoles',
          summary: 'Worker roles the planner may use (admin)',
          responses: {
            '200': {
              description:
                'Roles the planner may use: those with live replicas, and those that scale to zero (replicas 0)',
              content: json(ref('RoleList')),
            },
          },
        }),
      },
      ...OPERATOR_PATHS,
      '/openapi.json': {
        get: {
          operationId: 'getOpenApi',
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.2', content: json({ type: 'object' }) } },
        },
      },
      ...(probes ? PROBE_PATHS : {}),
    },
  };
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'query']);

/**
 * Where the document and the router disagree: `+ GET /x` is served but undocumented, `- GET /x`
 * documented but not served, `~ GET /x` served and documented with different scopes (the route's
 * `config.scope` against the operation's `security`). Routes are fastify's (`/v1/tasks/:id`); the
 * document's `{id}` is read the same way.
 */
export function routeDrift(
  document: Json,
  routes: readonly { method: string; url: string; scope?: string | undefined }[],
): string[] {
  const paths = (document.paths ?? {}) as Record<string, Record<string, unknown>>;
  const documented = new Map(
    Object.entries(paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([key]) => HTTP_METHODS.has(key))
        .map(([method, op]) => {
          const security = (op as { security?: Record<string, string[]>[] }).security;
          return [`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`, security?.[0]?.bearer?.[0]] as const;
        }),
    ),
  );
  const served = new Map(routes.map((r) => [`${r.method} ${r.url}`, r.scope] as const));
  return [
    ...[...served.keys()].filter((r) => !documented.has(r)).map((r) => `+ ${r}`),
    ...[...documented.keys()].filter((r) => !served.has(r)).map((r) => `- ${r}`),
    ...[...served]
      .filter(([r, scope]) => documented.has(r) && documented.get(r) !== scope)
      .map(([r, scope]) => `~ ${r} (scope ${scope ?? 'none'} served, ${documented.get(r) ?? 'none'} documented)`),
  ].sort();
}
