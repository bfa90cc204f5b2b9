import type { TaskEvent } from '@flotilla/contracts';
import { describe, expect, it } from 'vitest';
import type { TaskRecord } from './record.js';
import { buildTaskView } from './view.js';

const record = (over: Partial<TaskRecord> = {}): TaskRecord => ({
  taskId: 't1',
  owner: 'default',
  status: 'running',
  goal: 'g',
  budget: undefined,
  metadata: undefined,
  idempotencyKey: undefined,
  requestHash: undefined,
  limits: { maxSteps: 4, maxToolCalls: 4, maxSeconds: 60, maxTokens: 1000 },
  deadline: 0,
  plan: [
    { subtaskId: 's1', role: 'researcher', input: { q: 1 } },
    { subtaskId: 's2', role: 'researcher', input: { q: 2 } },
    { subtaskId: 's3', role: 'coder', input: { q: 3 } },
  ],
  answer: undefined,
  partial: undefined,
  error: undefined,
  subtaskErrors: {},
  replanned: false,
  remembered: false,
  orchestratorTokens: 7,
  traceId: undefined,
  createdAt: 'c',
  updatedAt: 'u',
  ...over,
});

const at = 'now';
const usage = { steps: 2, toolCalls: 1, tokens: 100, ms: 50 };

describe('buildTaskView', () => {
  it('derives each subtask state and replica from the events', () => {
    const events: TaskEvent[] = [
      { type: 'subtask_started', taskId: 't1', at, subtaskId: 's1', role: 'researcher', replica: 'r-a' },
      { type: 'subtask_started', taskId: 't1', at, subtaskId: 's2', role: 'researcher', replica: 'r-b' },
      {
        type: 'subtask_finished',
        taskId: 't1',
        at,
        subtaskId: 's1',
        role: 'researcher',
        replica: 'r-a',
        ok: true,
        stopReason: 'finish',
        usage,
      },
      {
        type: 'subtask_finished',
        taskId: 't1',
        at,
        subtaskId: 's2',
        role: 'researcher',
        replica: 'r-b',
        ok: false,
        stopReason: 'max_steps',
        usage,
      },
    ];
    const view = buildTaskView(record({ subtaskErrors: { s2: 'ran out of steps' } }), events);
    expect(view.subtasks.map((s) => [s.subtaskId, s.state, s.replica])).toEqual([
      ['s1', 'completed', 'r-a'],
      ['s2', 'failed', 'r-b'],
      ['s3', 'waiting', undefined],
    ]);
    expect(view.subtasks[1]?.error).toBe('ran out of steps');
    expect(view.stopReasons).toEqual({ s1: 'finish', s2: 'max_steps' });
    expect(view.usage).toEqual({ steps: 4, toolCalls: 2, tokens: 207, ms: 100 });
  });

  it('shows never-started subtasks of a cancelled task as cancelled', () => {
    const events: TaskEvent[] = [
      { type: 'subtask_started', taskId: 't1', at, subtaskId: 's1', role: 'researcher', replica: 'r-a' },
      {
        type: 'subtask_finished',
        taskId: 't1',
        at,
        subtaskId: 's1',
        role: 'researcher',
        replica: 'r-a',
        ok: false,
        stopReason: 'cancelled',
        usage,
      },
    ];
    const view = buildTaskView(record({ status: 'cancelled' }), events);
    expect(view.subtasks.map((s) => s.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });

  it('keeps a finished subtask finished when a late start event arrives (redelivery)', () => {
    const events: TaskEvent[] = [
      {
        type: 'subtask_finished',
        taskId: 't1',
        at,
        subtaskId: 's1',
        role: 'researcher',
        replica: 'r-a',
        ok: true,
        stopReason: 'finish',
        usage,
      },
      { type: 'subtask_started', taskId: 't1', at, subtaskId: 's1', role: 'researcher', replica: 'r-b' },
    ];
    expect(buildTaskView(record(), events).subtasks[0]).toMatchObject({ state: 'completed', replica: 'r-a' });
  });

  it('counts every handler start of a subtask as a run, and none for one never started', () => {
    const started = (subtaskId: string, replica: string): TaskEvent => ({
      type: 'subtask_started',
      taskId: 't1',
      at,
      subtaskId,
      role: 'researcher',
      replica,
    });
    // s1's first replica died mid-run; another one took it over.
    const events = [started('s1', 'r-a'), started('s2', 'r-b'), started('s1', 'r-c')];
    expect(buildTaskView(record(), events).subtasks.map((s) => [s.subtaskId, s.runs])).toEqual([
      ['s1', 2],
      ['s2', 1],
      ['s3', undefined],
    ]);
  });
});
