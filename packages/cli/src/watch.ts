import type { SubtaskView, TaskBudget, TaskView, Usage } from '@flotilla/contracts';
import type { ApprovalRequested, WatchEvent } from './approval-events.js';
import { ANSI, PLAIN, type Style, visibleLength } from './style.js';

export interface RenderOptions {
  style?: Style;
  /** Terminal columns: the goal and error lines are cut to fit, so a redraw never wraps. Default 80. */
  width?: number;
  /** Approvals requested and not yet decided (from the event stream; a TaskView does not carry them). */
  approvals?: readonly ApprovalRequested[];
  /** For the time left before an approval's deadline. Default Date.now(). */
  now?: number;
}

const BAR = 8;

/** `██████░░` for used of limit (full when over it), or '' when there is no limit to measure against. */
export function bar(used: number, limit: number | undefined, width = BAR): string {
  if (!limit) return '';
  const filled = Math.min(width, Math.round((used / limit) * width));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

const cut = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`);
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function stateColour(state: string, style: Style): (s: string) => string {
  if (state === 'completed') return style.green;
  if (state === 'failed') return style.red;
  if (state === 'cancelled') return style.yellow;
  if (state === 'active' || state === 'running' || state === 'planning' || state === 'aggregating') return style.cyan;
  return style.dim;
}

/** One metric as `name ███░░░░░ used/limit`, or `name used` when the task set no limit for it. */
function metric(name: string, used: string, usedN: number, limit: number | undefined, shown: string, style: Style) {
  const b = bar(usedN, limit);
  const over = limit !== undefined && usedN >= limit;
  const figure = limit === undefined ? used : `${used}/${shown}`;
  return `${style.dim(name)} ${b ? `${(over ? style.yellow : style.cyan)(b)} ` : ''}${figure}`;
}

/** The budget line of one subtask: its usage against the task's per-subtask limits. */
function usageLine(usage: Usage | undefined, budget: TaskBudget | undefined, style: Style): string {
  const u = usage ?? { steps: 0, toolCalls: 0, tokens: 0, ms: 0 };
  return [
    metric('steps', String(u.steps), u.steps, budget?.maxSteps, String(budget?.maxSteps), style),
    metric('tools', String(u.toolCalls), u.toolCalls, budget?.maxToolCalls, String(budget?.maxToolCalls), style),
    metric('tokens', String(u.tokens), u.tokens, budget?.maxTokens, String(budget?.maxTokens), style),
    metric('time', secs(u.ms), u.ms, budget?.maxSeconds && budget.maxSeconds * 1000, `${budget?.maxSeconds}s`, style),
  ].join('  ');
}

/** "4m 10s" until the deadline, or "overdue" (the timeout denies it). */
function timeLeft(deadline: string, now: number): string {
  const ms = Date.parse(deadline) - now;
  if (!(ms > 0)) return 'overdue';
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s left` : `${Math.floor(s / 60)}m ${s % 60}s left`;
}

/** A waiting approval under its subtask: what would run, how long is left, and the command that decides it. */
function approvalLines(a: ApprovalRequested, style: Style, now: number): string[] {
  return [
    `      ${style.yellow('⏸ waiting for approval')} ${style.bold(a.tool)}  ${style.dim(timeLeft(a.deadline, now))}  ${oneLine(a.summary)}`,
    style.dim(`        flotilla approve ${a.approvalId} --reason "..."   (or deny; ${a.approvers} decides)`),
  ];
}

function subtaskLines(s: SubtaskView, budget: TaskBudget | undefined, style: Style, width: number): string[] {
  const head = [
    `  ${style.bold(s.subtaskId)}`,
    s.role,
    stateColour(s.state, style)(s.state),
    s.replica ? style.dim(`on ${s.replica}`) : '',
    s.stopReason && s.stopReason !== 'finish' ? style.yellow(s.stopReason) : '',
    s.runs && s.runs > 1 ? style.yellow(`(run ${s.runs})`) : '',
    s.degraded?.length ? style.yellow(`without ${s.degraded.join(', ')}`) : '',
  ].filter(Boolean);
  const lines = [head.join('  '), `      ${usageLine(s.usage, budget, style)}`];
  if (s.error) lines.push(`      ${style.red(cut(oneLine(s.error), width - 6))}`);
  return lines;
}

/**
 * The live view of a task: a pure function of its TaskView (and the approvals waiting), redrawn
 * whole on every event. A header (id, status, goal), then per subtask its state, role and replica,
 * its usage as bars against the task's budget (each subtask gets the whole budget) and any approval
 * it waits for, then the totals.
 */
export function renderTask(
  view: TaskView,
  { style = PLAIN, width = 80, approvals = [], now = Date.now() }: RenderOptions = {},
): string[] {
  const lines = [
    `${style.bold('task')} ${view.taskId}  ${stateColour(view.status, style)(view.status)}${view.partial ? style.yellow(' (partial)') : ''}`,
    `${style.dim('goal')} ${cut(oneLine(view.goal), width - 5)}`,
  ];
  if (view.subtasks.length === 0) {
    lines.push(style.dim(view.status === 'queued' || view.status === 'planning' ? '  planning…' : '  no subtasks'));
  }
  for (const s of view.subtasks) {
    lines.push(...subtaskLines(s, view.budget, style, width));
    for (const a of approvals) if (a.subtaskId === s.subtaskId) lines.push(...approvalLines(a, style, now));
  }
  // One whose subtask the view does not list (yet): still shown, a person is being waited for.
  for (const a of approvals)
    if (!view.subtasks.some((s) => s.subtaskId === a.subtaskId))
      lines.push(`  ${style.bold(a.subtaskId)}  ${a.role}`, ...approvalLines(a, style, now));
  const u = view.usage;
  lines.push(
    style.dim(`total ${u.steps} steps · ${u.toolCalls} tool calls · ${u.tokens} tokens · ${secs(u.ms)}`) +
      (view.budget ? '' : style.dim(' (no task budget: the services’ limits apply)')),
  );
  if (view.error) lines.push(style.red(`error ${cut(oneLine(view.error), width - 6)}`));
  return lines.map((line) => fit(line, width));
}

/** A line that would wrap loses its colours and its tail: a wrapped line would break the redraw. */
const fit = (line: string, width: number) => (visibleLength(line) <= width ? line : cut(line.replace(ANSI, ''), width));

/** Why a completed task is partial: subtasks that did not finish, or ran while a service was down. */
function partialWhy(view: TaskView): string {
  const down = [...new Set(view.subtasks.flatMap((s) => s.degraded ?? []))];
  const unfinished = view.subtasks.some((s) => s.state !== 'completed');
  const why = [
    ...(unfinished ? ['some subtasks did not finish, see their stop reasons'] : []),
    ...(down.length ? [`${down.join(' and ')} was unavailable to some subtasks`] : []),
  ];
  return why.join('; ') || 'some subtasks did not finish, see their stop reasons';
}

/** What `submit --watch` prints once the task has ended: the answer, then how it ended. */
export function renderOutcome(view: TaskView, style: Style = PLAIN): string[] {
  const lines = ['', view.answer ?? view.error ?? style.dim('(no answer)'), ''];
  const how = `${view.status}${view.partial ? ` (partial: ${partialWhy(view)})` : ''}`;
  lines.push(`${stateColour(view.status, style)(how)}${view.traceId ? style.dim(` · trace ${view.traceId}`) : ''}`);
  return lines;
}

/** One event as an appended line: the live view when stdout is not a terminal (a log, a pipe, CI). */
export function eventLine(e: WatchEvent): string {
  switch (e.type) {
    case 'status':
      return `status    ${e.status}`;
    case 'planned':
      return `planned   ${e.subtasks.map((s) => `${s.subtaskId}:${s.role}`).join(' ')}`;
    case 'subtask_started':
      return `started   ${e.subtaskId} ${e.role} on ${e.replica}`;
    case 'subtask_resumed':
      return `resumed   ${e.subtaskId} ${e.role} on ${e.replica}`;
    case 'subtask_finished':
      return `finished  ${e.subtaskId} ${e.role} on ${e.replica}: ${e.stopReason}${e.degraded?.length ? ` without ${e.degraded.join(', ')}` : ''} (steps ${e.usage.steps}, tool calls ${e.usage.toolCalls}, tokens ${e.usage.tokens}, ${secs(e.usage.ms)})`;
    case 'completed':
      return `completed${e.partial ? ' (partial)' : ''}`;
    case 'failed':
      return `failed    ${e.reason}`;
    case 'cancelled':
      return 'cancelled';
    case 'approval_requested':
      return `approval  ${e.subtaskId} ${e.role} waits for approval ${e.approvalId}: ${e.tool} ${oneLine(e.summary)} (deadline ${e.deadline}; flotilla approve|deny ${e.approvalId} --reason ...)`;
    case 'approval_decided':
      return `decided   ${e.subtaskId} approval ${e.approvalId}: ${e.decision} by ${e.by}`;
  }
}

/**
 * The bytes that replace a frame of `previous` lines with `next` on a terminal: up to the first
 * line of the old frame, clear to the end of the screen, write the new one. Lines must not wrap
 * (renderTask cuts them to the width) or the count of lines to go up would be wrong.
 */
export function redraw(previous: number, next: string[]): string {
  return `${previous ? `\x1b[${previous}A\r\x1b[J` : ''}${next.join('\n')}\n`;
}
