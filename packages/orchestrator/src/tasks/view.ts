import {
  type PlannedSubtask,
  type StopReason,
  type SubtaskView,
  type TaskEvent,
  type TaskView,
  type Usage,
  ZERO_USAGE,
} from '@flotilla/contracts';
import type { TaskRecord } from './record.js';

/**
 * A task as GET /v1/tasks/:id shows it. The hash holds what the orchestrator decided (status,
 * plan, answer); each subtask's state, replica, stop reason and usage come from the events the
 * workers appended, the one record of what ran where.
 *
 * Subtask states: `completed` when the run finished ok, `cancelled` when it stopped for a
 * cancellation (or never started before the task was cancelled), `failed` for every other stop
 * (a budget limit, a policy denial, invalid input, a job that exhausted its retries).
 */
export function buildTaskView(record: TaskRecord, events: readonly TaskEvent[]): TaskView {
  const subtasks = new Map<string, SubtaskView>(
    record.plan.map((p: PlannedSubtask) => [p.subtaskId, { ...p, state: 'waiting' as const }]),
  );
  const stopReasons: Record<string, StopReason> = {};
  const usage: Usage = { ...ZERO_USAGE };

  for (const e of events) {
    if (e.type !== 'subtask_started' && e.type !== 'subtask_finished') continue;
    const s = subtasks.get(e.subtaskId);
    if (!s) continue;
    if (e.type === 'subtask_started') {
      s.runs = (s.runs ?? 0) + 1;
      // A redelivery after a crashed replica starts again; a finished subtask stays finished.
      if (s.state === 'waiting' || s.state === 'active') Object.assign(s, { state: 'active', replica: e.replica });
      continue;
    }
    const state = e.ok ? 'completed' : e.stopReason === 'cancelled' ? 'cancelled' : 'failed';
    Object.assign(s, {
      state,
      replica: e.replica,
      stopReason: e.stopReason,
      usage: e.usage,
      ...(e.degraded?.length ? { degraded: e.degraded } : {}),
    });
    stopReasons[e.subtaskId] = e.stopReason;
  }

  for (const s of subtasks.values()) {
    if (record.status === 'cancelled' && s.state === 'waiting') s.state = 'cancelled';
    const error = record.subtaskErrors[s.subtaskId];
    if (error) s.error = error;
    if (s.usage) {
      usage.steps += s.usage.steps;
      usage.toolCalls += s.usage.toolCalls;
      usage.tokens += s.usage.tokens;
      usage.ms += s.usage.ms;
    }
  }
  // The orchestrator's own model calls (planning, the final answer) count toward the task too.
  usage.tokens += record.orchestratorTokens;

  return {
    v: 1,
    taskId: record.taskId,
    status: record.status,
    goal: record.goal,
    ...(record.budget ? { budget: record.budget } : {}),
    plan: record.plan,
    subtasks: [...subtasks.values()],
    ...(record.answer !== undefined ? { answer: record.answer } : {}),
    ...(record.partial !== undefined ? { partial: record.partial } : {}),
    ...(record.error !== undefined ? { error: record.error } : {}),
    stopReasons,
    usage,
    ...(record.traceId ? { traceId: record.traceId } : {}),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}
