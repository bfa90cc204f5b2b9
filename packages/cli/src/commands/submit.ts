import type { TaskBudget, TaskView } from '@flotilla/contracts';
import type { ApprovalRequested } from '../approval-events.js';
import { CliError } from '../client.js';
import { exitCodeFor } from '../outcome.js';
import { eventLine, redraw, renderOutcome, renderTask } from '../watch.js';
import { type CommandContext, print, printJson } from './io.js';

export interface SubmitOptions {
  budget?: TaskBudget;
  idempotencyKey?: string;
  watch?: boolean;
}

/**
 * `flotilla submit`: without --watch, the task id (or the accepted body under --json), exit 0.
 * With --watch, the live view until the task ends, the answer, and the outcome as the exit status.
 */
export async function submit(ctx: CommandContext, goal: string, opts: SubmitOptions): Promise<number> {
  const accepted = await ctx.client.submit(goal, opts);
  if (!opts.watch) {
    if (ctx.json) printJson(ctx, accepted.body);
    else print(ctx, accepted.taskId);
    return 0;
  }
  if (!ctx.json && !accepted.created) print(ctx, ctx.style.dim('(the idempotency key names an existing task)'));
  return watchTask(ctx, accepted.taskId);
}

/**
 * Follows a task's events and shows it: on a terminal one frame redrawn in place (renderTask of a
 * fresh TaskView per event, since the view carries replicas and usage an event alone does not);
 * elsewhere one appended line per event. Under --json only the final TaskView is printed.
 */
export async function watchTask(ctx: CommandContext, taskId: string): Promise<number> {
  const tty = !ctx.json && Boolean(ctx.out.isTTY);
  const width = () => Math.max(40, ctx.out.columns ?? 80);
  let view: TaskView = await ctx.client.get(taskId);
  // Requested and not yet decided, by approval id: the stream replays from the first event, so a
  // decided one is removed again before it is ever drawn.
  const waiting = new Map<string, ApprovalRequested>();
  let drawn = 0;
  const draw = () => {
    const frame = renderTask(view, { style: ctx.style, width: width(), approvals: [...waiting.values()] });
    ctx.out.write(redraw(drawn, frame));
    drawn = frame.length;
  };
  if (tty) draw();
  else if (!ctx.json) print(ctx, `task      ${taskId}`);
  // While someone is waited for, the deadline counts down on screen between events too.
  const ticker = tty ? setInterval(() => waiting.size > 0 && draw(), 1000) : undefined;
  try {
    // The stream replays from the task's first event, so nothing between submit and here is missed,
    // and it ends after the terminal event.
    for await (const event of ctx.client.events(taskId)) {
      if (event.type === 'approval_requested') waiting.set(event.approvalId, event);
      if (event.type === 'approval_decided') waiting.delete(event.approvalId);
      if (!tty && !ctx.json) print(ctx, eventLine(event));
      if (tty) {
        view = await ctx.client.get(taskId);
        draw();
      }
      if (event.type === 'completed' || event.type === 'failed' || event.type === 'cancelled') break;
    }
  } finally {
    clearInterval(ticker);
  }
  view = await ctx.client.get(taskId);
  // An ended task waits for nobody (a cancel leaves its requests undecided).
  waiting.clear();
  const code = exitCodeFor(view);
  // A stream cut short (the orchestrator restarting) leaves the task running: say so rather than
  // print an outcome it has not reached.
  if (code === undefined) {
    throw new CliError(
      'flotilla:stream_ended',
      `the event stream of task ${taskId} ended while it was ${view.status}`,
      `follow it with flotilla status ${taskId}`,
    );
  }
  if (ctx.json) printJson(ctx, view);
  else {
    if (tty) draw();
    print(ctx, renderOutcome(view, ctx.style));
  }
  return code;
}
