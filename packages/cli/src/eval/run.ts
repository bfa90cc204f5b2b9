import { type TaskStatus, TaskView, TERMINAL_TASK_STATUSES } from '@flotilla/contracts';
import type { EvalGoal, Fault, GoalKind } from './goals.js';
import type { EvalSite } from './site.js';

/** One goal's outcome, as the table and the JSON file hold it. */
export interface GoalResult {
  id: string;
  kind: GoalKind;
  goal: string;
  pass: boolean;
  why: string;
  fault?: Fault;
  status: TaskStatus | 'unfinished';
  steps: number;
  toolCalls: number;
  tokens: number;
  seconds: number;
  taskId?: string;
  /** The first 500 characters of the answer, for reading a failure. */
  answer?: string;
  /** The task's error and each failed subtask's, first 300 characters each: why it failed, in full. */
  errors?: string[];
}

/** A whole run: what ran it and every goal's result. The file `pnpm eval` writes, and --compare reads. */
export interface EvalRun {
  label: string;
  provider: string;
  model: string;
  startedAt: string;
  results: GoalResult[];
}

export interface RunGoalsOptions {
  /** The orchestrator's API (a local mesh, AUTH=off on loopback). */
  url: string;
  site: EvalSite;
  goals: readonly EvalGoal[];
  /** Past this a task that has not ended is flotilla's fault: its own deadline should have ended it. */
  timeoutMs: number;
  onResult?: (r: GoalResult) => void;
}

const POLL_MS = 500;

async function api<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...init?.headers } });
  return { status: res.status, body: (await res.json()) as T };
}

/**
 * Runs the goals one after another (a local model serves one request at a time anyway), each as a
 * task through the API, and judges each when it ends.
 */
export async function runGoals(opts: RunGoalsOptions): Promise<GoalResult[]> {
  const results: GoalResult[] = [];
  for (const g of opts.goals) {
    const r = await runGoal(opts, g);
    results.push(r);
    opts.onResult?.(r);
  }
  return results;
}

async function runGoal(opts: RunGoalsOptions, g: EvalGoal): Promise<GoalResult> {
  const goal = g.goal(opts.site);
  const base = { id: g.id, kind: g.kind, goal, steps: 0, toolCalls: 0, tokens: 0 };
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  const accepted = await api<{ taskId?: string; detail?: string }>(`${opts.url}/v1/tasks`, {
    method: 'POST',
    body: JSON.stringify({ goal, ...(g.budget && { budget: g.budget }) }),
  });
  const taskId = accepted.body.taskId;
  if (accepted.status !== 202 || !taskId) {
    const why = `the API refused the task: ${accepted.status} ${accepted.body.detail ?? ''}`.trim();
    return { ...base, pass: false, why, fault: 'flotilla', status: 'unfinished', seconds: seconds() };
  }
  for (;;) {
    const { status, body } = await api<unknown>(`${opts.url}/v1/tasks/${taskId}`);
    const view = status === 200 ? TaskView.safeParse(body) : undefined;
    if (view?.success && TERMINAL_TASK_STATUSES.includes(view.data.status)) {
      const v = view.data;
      const verdict = g.judge(v, opts.site);
      return {
        ...base,
        ...verdict,
        status: v.status,
        steps: v.usage.steps,
        toolCalls: v.usage.toolCalls,
        tokens: v.usage.tokens,
        seconds: seconds(),
        taskId,
        ...(v.answer !== undefined && { answer: v.answer.slice(0, 500) }),
        errors: [v.error, ...v.subtasks.map((st) => st.error && `${st.subtaskId}: ${st.error}`)]
          .filter((e): e is string => Boolean(e))
          .map((e) => e.slice(0, 300)),
      };
    }
    if (Date.now() - started > opts.timeoutMs) {
      await api(`${opts.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', body: '{}' }).catch(() => undefined);
      const why = `did not end within ${Math.round(opts.timeoutMs / 1000)} s, past its own deadline`;
      return { ...base, pass: false, why, fault: 'flotilla', status: 'unfinished', seconds: seconds(), taskId };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
