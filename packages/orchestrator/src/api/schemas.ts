import { IdempotencyKey, TaskEvent, TaskStatus } from '@flotilla/contracts';
import { z } from 'zod';

// The HTTP-only schemas: path parameters, headers, query strings and the bodies that exist only
// on the wire. Handlers parse with these and openapi.ts documents these, so the two can't differ.

/** Task ids: the 8-4-4-4-12 hex form of the UUIDs this API hands out, any case (RFC 9562 says compare case-insensitively). */
export const TaskIdParam = z
  .guid({ message: 'must be a task id (a UUID)' })
  .toLowerCase()
  .meta({ description: 'A task id, as POST /v1/tasks returned it' });

/** The Idempotency-Key header: the same rules as the body's idempotencyKey. */
export const IdempotencyKeyHeader = IdempotencyKey.meta({
  description:
    'The same key always names the same task: a replay of the same request answers 200 with that task and does no new work; ' +
    'a different request under a used key is a 409. Equivalent to the body field idempotencyKey; when both are sent they must be equal (else 409).',
});

/**
 * A Redis stream id as this server sends it in SSE `id:` lines (`<ms>-<seq>`), accepted back in
 * Last-Event-ID. `<ms>` alone means `<ms>-0`, as Redis reads an incomplete id; accepting it also
 * keeps the header schema one that header-safe generators can satisfy (schemathesis draws header
 * values from letters and digits, so a pattern whose every match needs a '-' leaves it only
 * invalid values). At most 19 digits a part, so every id the pattern allows is one Redis can
 * compare (its parts are 64-bit; 20 digits could overflow them).
 */
export const EVENT_ID = /^[0-9]{1,19}(-[0-9]{1,19})?$/;
export const LastEventIdHeader = z
  .string()
  .regex(EVENT_ID, 'must be an event id this server sent (e.g. 1700000000000-0)')
  .transform((id) => (id.includes('-') ? id : `${id}-0`))
  .meta({
    description:
      'Resume after this event: the `id` of the last event received (EventSource sends it on reconnect); ' +
      '`<ms>` alone means `<ms>-0`. Events after it are sent; without it the stream starts at the task’s first event.',
  });

/** The cursor GET /v1/tasks hands out; any string of this shape is a valid position to page from. */
export const TASK_CURSOR = /^[0-9]{16}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

/**
 * A query value as fastify's parser leaves it: a string, or an array when the name repeats.
 * Digits only: `Number()` would also take '0x10', '1e1' and ' 5 ', which the document's
 * `type: integer` does not.
 */
const queryInteger = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,15}$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const TaskListQuery = {
  limit: queryInteger(1, MAX_PAGE_SIZE)
    .optional()
    .meta({ description: `Tasks per page, at most ${MAX_PAGE_SIZE}`, default: DEFAULT_PAGE_SIZE }),
  cursor: z
    .string()
    .regex(TASK_CURSOR, 'must be a nextCursor this server returned')
    .optional()
    .meta({ description: 'Opaque: the nextCursor of the previous page. Omit for the newest tasks.' }),
  // One value arrives as a string, a repeated one as an array (style: form, explode: true).
  status: z
    .preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(TaskStatus).min(1))
    .optional()
    .meta({ description: 'Only tasks in one of these statuses; repeat the parameter for several.' }),
};

/** POST /v1/tasks's answer: where to look next. */
export const TaskAccepted = z.object({
  taskId: z.string(),
  status: TaskStatus,
  links: z.object({ self: z.string(), events: z.string() }),
});
export type TaskAccepted = z.infer<typeof TaskAccepted>;

/** RFC 9457 problem document, as every error response carries it. */
export const Problem = z.object({
  type: z.string().describe('urn:flotilla:problem:<code>, stable per kind of problem'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string().describe('The request path'),
  code: z.string().describe('Stable machine-readable code, e.g. FLOTILLA_INVALID_BODY'),
  errors: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .describe('One entry per bad field: `goal`, `budget.maxSteps`, `path.id`, `header.idempotency-key`, `query.limit`'),
});
export type Problem = z.infer<typeof Problem>;

/** The SSE `id` of an event: a Redis stream id (any, as Redis can write ids of up to 20 digits a part). */
const StreamId = z.string().regex(/^[0-9]{1,20}-[0-9]{1,20}$/);

/**
 * One Server-Sent Event of GET /v1/tasks/{id}/events, as an EventSource (and OpenAPI 3.2's
 * text/event-stream model) sees it: `event` is the TaskEvent's type, `data` the TaskEvent as JSON.
 */
export const TaskEventMessage = z.object({
  event: z.enum(TaskEvent.options.map((o) => o.shape.type.value) as [TaskEvent['type'], ...TaskEvent['type'][]]),
  data: z.string().meta({ contentMediaType: 'application/json' }),
  id: StreamId.optional().describe(
    "The event's stream id, sent with every event; send it back as Last-Event-ID to resume after that event",
  ),
  retry: z.number().int().nonnegative().optional(),
});
