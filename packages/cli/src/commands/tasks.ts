import { type TaskView, TERMINAL_TASK_STATUSES } from '@flotilla/contracts';
import { renderTask } from '../watch.js';
import { type CommandContext, print, printJson } from './io.js';

const pad = (s: string, n: number) => s.padEnd(n);

/** `flotilla tasks`: this key's tasks, newest first, one line each. */
export async function listTasks(ctx: CommandContext, opts: { status?: string[]; limit?: number }): Promise<number> {
  const page = await ctx.client.list(opts);
  if (ctx.json) {
    printJson(ctx, page);
    return 0;
  }
  if (page.tasks.length === 0) {
    print(ctx, ctx.style.dim('no tasks (flotilla submit "<goal>" starts one)'));
    return 0;
  }
  const width = Math.max(60, ctx.out.columns ?? 100);
  for (const t of page.tasks) {
    const goal = t.goal.replace(/\s+/g, ' ');
    const room = width - 36 - 12 - 22;
    print(
      ctx,
      `${t.taskId}  ${pad(t.status, 11)} ${ctx.style.dim(t.createdAt.slice(0, 19).replace('T', ' '))}  ${goal.length > room ? `${goal.slice(0, room - 1)}…` : goal}`,
    );
  }
  if (page.nextCursor) print(ctx, ctx.style.dim(`more: flotilla tasks --limit ${page.tasks.length * 2}`));
  return 0;
}

/** `flotilla status <id>`: the same view as submit --watch draws, once, with the answer when there is one. */
export async function showTask(ctx: CommandContext, taskId: string): Promise<number> {
  const view = await ctx.client.get(taskId);
  if (ctx.json) printJson(ctx, view);
  else {
    print(ctx, renderTask(view, { style: ctx.style, width: ctx.out.columns ?? 80 }));
    if (view.answer) print(ctx, ['', view.answer]);
  }
  return 0;
}

/** `flotilla cancel <id>`: asks the orchestrator to stop it; running subtasks wind down after. */
export async function cancelTask(ctx: CommandContext, taskId: string): Promise<number> {
  const view: TaskView = await ctx.client.cancel(taskId);
  if (ctx.json) printJson(ctx, view);
  else {
    const winding = view.subtasks.filter((s) => s.state === 'active').length;
    print(
      ctx,
      `${taskId} ${view.status}${winding && TERMINAL_TASK_STATUSES.includes(view.status) ? ctx.style.dim(` (${winding} running subtask(s) stopping)`) : ''}`,
    );
  }
  return 0;
}
