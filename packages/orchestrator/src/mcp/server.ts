import { type RoleInfo, TaskBudget, TaskRequest, type TaskView, TERMINAL_TASK_STATUSES } from '@flotilla/contracts';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ProblemError } from '../errors.js';
import type { TaskService } from '../tasks/service.js';
import { describeEvent, watchTask } from './watch.js';

/** The longest a client may ask one call to wait for a task's end, seconds. */
export const MAX_WAIT_SECONDS = 600;

export interface FlotillaMcpDeps {
  tasks: TaskService;
  roles: () => Promise<RoleInfo[]>;
  /** Commands connection; each waiting call tails the task's events on its own duplicate. */
  redis: Redis;
  admission?: { admit(): Promise<void> };
  /** The tenant the request authenticated as (its API key's name): the only tasks it sees. */
  owner: string;
  /** Fires when the service shuts down: waiting calls return what they have. */
  closing: AbortSignal;
  log: FastifyBaseLogger;
  version: string;
}

const TaskId = z.string().min(1).max(100).describe('The id submit_task returned');
const WaitSeconds = z
  .number()
  .int()
  .min(0)
  .max(MAX_WAIT_SECONDS)
  .optional()
  .describe(
    'Wait up to this long for the task to end, sending progress notifications (with a progressToken) as it goes. Default 0: answer at once',
  );

const result = (value: object, text = JSON.stringify(value)): CallToolResult => ({
  content: [{ type: 'text', text }],
  structuredContent: value as Record<string, unknown>,
});

/** A refusal the client can act on, as a tool error result (MCP's way), never a stack trace. */
const refusal = (message: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text: message }] });

/**
 * flotilla's tasks as MCP tools, for one authenticated tenant: submit_task, get_task, cancel_task,
 * list_roles. Built per request (stateless streamable HTTP), so the tenant is fixed by the caller's
 * API key and never by an argument.
 */
export function createFlotillaMcpServer(deps: FlotillaMcpDeps): McpServer {
  const server = new McpServer(
    { name: 'flotilla', version: deps.version },
    {
      instructions:
        'Hand goals to a flotilla fleet: submit_task starts one (optionally waiting for its answer), get_task reads or waits for it, cancel_task stops it.',
    },
  );

  /** Runs a tool body; API errors (not found, busy, invalid) become tool errors, anything else a bland one. */
  const guarded =
    <A>(name: string, body: (args: A, extra: Extra) => Promise<CallToolResult>) =>
    async (args: A, extra: Extra): Promise<CallToolResult> => {
      try {
        return await body(args, extra);
      } catch (err) {
        if (err instanceof ProblemError && err.statusCode < 500) return refusal(err.message);
        deps.log.error({ err, tool: name }, 'MCP tool call failed');
        return refusal(`${name} failed on the server; retry later`);
      }
    };

  /** The task's view after waiting up to `waitSeconds` for its end, with a progress notification per event. */
  async function waited(taskId: string, waitSeconds: number | undefined, extra: Extra): Promise<TaskView> {
    const view = await deps.tasks.get(taskId, deps.owner);
    if (!waitSeconds || TERMINAL_TASK_STATUSES.includes(view.status)) return view;
    const progressToken = extra._meta?.progressToken;
    const signal = AbortSignal.any([extra.signal, deps.closing]);
    let progress = 0;
    await watchTask(deps.redis, deps.tasks.store, taskId, {
      untilMs: Date.now() + waitSeconds * 1000,
      signal,
      onEvent: async (event) => {
        progress++;
        if (progressToken === undefined) return;
        await extra
          .sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress, message: describeEvent(event) },
          })
          .catch(() => {});
      },
    });
    return deps.tasks.get(taskId, deps.owner);
  }

  server.registerTool(
    'submit_task',
    {
      title: 'Submit a goal',
      description:
        'Starts a task: the fleet plans it into subtasks for its roles and answers. Returns the task id at once, or waits for the answer when waitSeconds is given.',
      inputSchema: {
        goal: z.string().min(1).max(8000).describe('What to achieve'),
        budget: TaskBudget.optional().describe('Limits for the whole task (steps, tool calls, seconds, tokens)'),
        idempotencyKey: z
          .string()
          .min(1)
          .max(200)
          .optional()
          .describe('The same key returns the same task instead of starting another'),
        waitSeconds: WaitSeconds,
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    guarded('submit_task', async ({ goal, budget, idempotencyKey, waitSeconds }, extra) => {
      // The API's own schema decides, so MCP and HTTP clients are held to one contract.
      const parsed = TaskRequest.safeParse({ goal, budget, idempotencyKey });
      if (!parsed.success) return refusal(`invalid task:\n${z.prettifyError(parsed.error)}`);
      await deps.admission?.admit();
      const { record } = await deps.tasks.submit(parsed.data, undefined, deps.owner);
      if (!waitSeconds) return result({ taskId: record.taskId, status: record.status });
      return result(await waited(record.taskId, waitSeconds, extra));
    }),
  );

  server.registerTool(
    'get_task',
    {
      title: 'Read a task',
      description: "A task's status, plan, subtasks, usage and (once completed) its answer; can wait for the end.",
      inputSchema: { taskId: TaskId, waitSeconds: WaitSeconds },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    guarded('get_task', async ({ taskId, waitSeconds }, extra) => result(await waited(taskId, waitSeconds, extra))),
  );

  server.registerTool(
    'cancel_task',
    {
      title: 'Cancel a task',
      description: 'Stops a task: running subtasks wind down, nothing new starts. Its record stays readable.',
      inputSchema: { taskId: TaskId },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    guarded('cancel_task', async ({ taskId }) => result(await deps.tasks.cancel(taskId, deps.owner))),
  );

  server.registerTool(
    'list_roles',
    {
      title: 'List roles',
      description:
        'The worker roles the planner can use for a goal, with what each does: those running now and those started on demand.',
      inputSchema: {},
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    // A tenant's view: what each role does, not the operator's replicas and versions.
    guarded('list_roles', async () =>
      result({ roles: (await deps.roles()).map(({ role, description }) => ({ role, description })) }),
    ),
  );

  return server;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;
