import { RoleInfo, TaskEvent, TaskPage, TaskRequest, TaskView } from '@flotilla/contracts';
import { LivezBody, ReadyzBody, StartupzBody } from '@flotilla/runtime';
import { z } from 'zod';
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
  '401': problem('Missing or wrong bearer token', { 'WWW-Authenticate': header('WWWAuthenticate') }),
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

/** A /v1 operation: its own responses (which win over the shared ones), in status order. */
const v1 = (operation: Json & { responses: Record<string, Json> }) => {
  const responses: Record<string, Json> = { ...v1Problems, ...operation.responses };
  const sorted = Object.fromEntries(
    Object.keys(responses)
      .sort()
      .map((status) => [status, responses[status] as Json]),
  );
  return { ...operation, responses: withRateLimitHeaders(sorted) };
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
- /v1 requires \`Authorization: Bearer <token>\` when the server has API_TOKEN set, and is rate limited per client; the probes and this document are open.
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
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        TaskRequest: schema(TaskRequest, 'input'),
        TaskAccepted: schema(TaskAccepted),
        TaskView: schema(TaskView),
        TaskPage: schema(TaskPage),
        TaskEvent: schema(TaskEvent),
        TaskEventMessage: eventMessage,
        RoleList: schema(z.object({ roles: z.array(RoleInfo) })),
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
        post: v1({
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
              'The idempotency key names a task submitted with a different request, or the Idempotency-Key header and the body’s idempotencyKey differ',
            ),
            '422': problem('The body does not match TaskRequest; errors[] names each field'),
          },
        }),
        get: v1({
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
        get: v1({
          operationId: 'getTask',
          summary: 'A task: status, plan, subtasks, answer, usage',
          responses: {
            '200': { description: 'The task', content: json(ref('TaskView')) },
            '400': problem('The id is not a UUID'),
            '404': problem('No such task, or it expired'),
          },
        }),
      },
      '/v1/tasks/{id}/cancel': {
        parameters: [param('TaskId')],
        post: v1({
          operationId: 'cancelTask',
          summary: 'Cancel a task',
          description:
            'Stops the task: no new subtasks start, running ones see their AbortSignal fire. The task stays readable. ' +
            'Cancelling a cancelled task changes nothing and answers 202 again. Takes no body.',
          responses: {
            '202': { description: 'Cancelled; running subtasks are stopping', content: json(ref('TaskView')) },
            ...bodyProblems,
            '400': problem(`The id is not a UUID; or a body was sent that is not valid JSON`),
            '404': problem('No such task, or it expired'),
            '409': problem('The task already completed or failed'),
          },
        }),
      },
      '/v1/tasks/{id}/events': {
        parameters: [param('TaskId')],
        get: v1({
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
            '404': problem('No such task, or it expired'),
            '429': problem('Rate limit exceeded, or this replica has too many streams open (SSE_MAX_CLIENTS)', {
              'Retry-After': header('RetryAfter'),
            }),
          },
        }),
      },
      '/v1/roles': {
        get: v1({
          operationId: 'listRoles',
          summary: 'Live worker roles',
          responses: { '200': { description: 'Roles with live replicas', content: json(ref('RoleList')) } },
        }),
      },
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
 * documented but not served. Routes are fastify's (`/v1/tasks/:id`); the document's `{id}` is
 * read the same way.
 */
export function routeDrift(document: Json, routes: readonly { method: string; url: string }[]): string[] {
  const paths = (document.paths ?? {}) as Record<string, Record<string, unknown>>;
  const documented = new Set(
    Object.entries(paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => HTTP_METHODS.has(key))
        .map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    ),
  );
  const served = new Set(routes.map((r) => `${r.method} ${r.url}`));
  return [
    ...[...served].filter((r) => !documented.has(r)).map((r) => `+ ${r}`),
    ...[...documented].filter((r) => !served.has(r)).map((r) => `- ${r}`),
  ].sort();
}
