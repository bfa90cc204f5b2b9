import { RoleInfo, TaskEvent, TaskRequest, TaskView } from '@flotilla/contracts';
import { z } from 'zod';
import { TaskAccepted } from './tasks.js';

const schema = (s: z.ZodType, io: 'input' | 'output' = 'output') => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string(),
  code: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ref('Problem') } },
});
const taskId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const common = {
  '400': problem('A parameter or header is malformed'),
  '401': problem('Missing or wrong bearer token'),
  '429': problem('Rate limit exceeded'),
};

/**
 * The API's OpenAPI 3.1 document, built from the same zod schemas that validate requests, so
 * the document cannot drift from what the server accepts.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'flotilla orchestrator', version, description: 'Submit goals, follow their progress, cancel them.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        TaskRequest: schema(TaskRequest, 'input'),
        TaskAccepted: schema(TaskAccepted),
        TaskView: schema(TaskView),
        TaskEvent: schema(TaskEvent),
        RoleInfo: schema(RoleInfo),
        Problem: schema(Problem),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/tasks': {
        post: {
          summary: 'Submit a goal',
          parameters: [
            { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 200 } },
          ],
          requestBody: { required: true, content: json('TaskRequest') },
          responses: {
            '202': { description: 'Accepted', content: json('TaskAccepted') },
            '200': { description: 'Identical replay of an idempotency key', content: json('TaskAccepted') },
            ...common,
            '409': problem('Idempotency key reused for a different request'),
            '413': problem('Body too large'),
            '415': problem('Body is not application/json'),
            '422': problem('Body does not match TaskRequest'),
          },
        },
      },
      '/v1/tasks/{id}': {
        get: {
          summary: 'A task: status, plan, subtasks, answer, usage',
          parameters: [taskId],
          responses: {
            '200': { description: 'The task', content: json('TaskView') },
            ...common,
            '404': problem('No such task'),
          },
        },
        delete: {
          summary: 'Cancel a task',
          parameters: [taskId],
          responses: {
            '202': { description: 'Cancelled; running subtasks are stopping', content: json('TaskView') },
            ...common,
            '404': problem('No such task'),
            '409': problem('The task already completed or failed'),
          },
        },
      },
      '/v1/tasks/{id}/events': {
        get: {
          summary: 'Progress as Server-Sent Events (id = stream id; resume with Last-Event-ID)',
          parameters: [taskId, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'text/event-stream of TaskEvent',
              content: { 'text/event-stream': { schema: ref('TaskEvent') } },
            },
            ...common,
            '404': problem('No such task'),
          },
        },
      },
      '/v1/roles': {
        get: {
          summary: 'Live worker roles',
          responses: {
            '200': {
              description: 'Roles with live replicas',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: { roles: { type: 'array', items: ref('RoleInfo') } },
                    required: ['roles'],
                  },
                },
              },
            },
            ...common,
          },
        },
      },
      '/livez': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'Alive' } } } },
      '/readyz': {
        get: {
          summary: 'Readiness',
          security: [],
          responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } },
        },
      },
      '/metrics': {
        get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'Metrics' } } },
      },
    },
  };
}
