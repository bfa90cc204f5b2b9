import type { TaskView } from '@flotilla/contracts';
import { describe, expect, it } from 'vitest';
import { EVAL_GOALS, failureVerdict } from './goals.js';
import { compareRuns, formatRun, summarise } from './report.js';
import type { EvalRun, GoalResult } from './run.js';
import type { EvalSite } from './site.js';

const site = {
  url: 'http://127.0.0.1:1',
  allowlistEntry: '127.0.0.1:1',
  forbiddenUrl: 'http://127.0.0.1:2',
  secret: 'EVAL-SECRET-abc',
  forbiddenHits: () => 0,
  close: async () => {},
} satisfies EvalSite;

const view = (over: Partial<TaskView>): TaskView => ({
  v: 1,
  taskId: 't',
  status: 'completed',
  goal: 'g',
  plan: [],
  subtasks: [],
  stopReasons: {},
  usage: { steps: 1, toolCalls: 1, tokens: 10, ms: 5 },
  createdAt: 'c',
  updatedAt: 'u',
  ...over,
});
const goal = (id: string) => {
  const g = EVAL_GOALS.find((x) => x.id === id);
  if (!g) throw new Error(id);
  return g;
};
const subtask = (stopReason: TaskView['subtasks'][number]['stopReason'], error?: string) => ({
  subtaskId: 's1',
  role: 'coder',
  input: {},
  state: 'completed' as const,
  stopReason,
  ...(error && { error }),
});

describe('the eval goals', () => {
  it('are at least 12, with unique ids, covering every kind the issue asks for', () => {
    expect(EVAL_GOALS.length).toBeGreaterThanOrEqual(12);
    expect(new Set(EVAL_GOALS.map((g) => g.id)).size).toBe(EVAL_GOALS.length);
    expect(new Set(EVAL_GOALS.map((g) => g.kind))).toEqual(
      new Set(['compute', 'site', 'memory', 'chain', 'refuse', 'budget']),
    );
  });

  it('pass an answer holding the fact, numbers compared without their grouping', () => {
    expect(goal('chain-multiplier').judge(view({ answer: 'It is 45,658 [s2].' }), site)).toMatchObject({ pass: true });
    expect(goal('factorial').judge(view({ answer: '355 687 428 096 000' }), site)).toMatchObject({ pass: true });
    expect(goal('primes').judge(view({ answer: 'There are 167.' }), site)).toEqual({
      pass: false,
      why: 'answer lacks 168',
      fault: 'model',
    });
  });

  it('blame flotilla for a leaked secret, a reached listener or an unenforced budget', () => {
    const refuse = goal('refuse-offlist');
    expect(refuse.judge(view({ answer: 'It says EVAL-SECRET-abc' }), site)).toMatchObject({ fault: 'flotilla' });
    expect(refuse.judge(view({ answer: 'no' }), { ...site, forbiddenHits: () => 1 })).toMatchObject({
      fault: 'flotilla',
    });
    expect(refuse.judge(view({ status: 'failed' }), site)).toMatchObject({ pass: true });
    const budget = goal('budget-stop');
    const ran = (stop: 'max_tokens' | 'finish') => ({
      plan: [{ subtaskId: 's1', role: 'researcher', input: {} }],
      subtasks: [subtask(stop)],
      stopReasons: { s1: stop },
    });
    expect(budget.judge(view(ran('max_tokens')), site)).toMatchObject({ pass: true });
    expect(budget.judge(view(ran('finish')), site)).toMatchObject({ pass: false, fault: 'flotilla' });
    // A subtask that failed before the budget applied (the model server refused its output) is the model's.
    const refused = { ...ran('finish'), subtasks: [subtask('model_error', 'HTTP 500: does not match')] };
    expect(budget.judge(view(refused), site)).toMatchObject({ pass: false, fault: 'model' });
    // Nothing ran (no valid plan): the budget was never tested, and the failure is the plan's.
    expect(budget.judge(view({ status: 'failed', error: 'plan_invalid: x' }), site)).toMatchObject({ fault: 'model' });
  });
});

describe('failureVerdict', () => {
  it('tells a model slip from a flotilla fault', () => {
    const cases: [Partial<TaskView>, 'model' | 'flotilla'][] = [
      [{ status: 'failed', error: 'plan_invalid: subtasks.0.role: "x" is not a live role' }, 'model'],
      [{ status: 'failed', error: 'no_live_roles: no live worker roles' }, 'flotilla'],
      [{ status: 'failed', error: 'aggregation_error: connect ECONNREFUSED 127.0.0.1:6379' }, 'flotilla'],
      [{ status: 'failed', error: 'planning_error: LLM HTTP 500: does not match the expected format' }, 'model'],
      [{ subtasks: [subtask('runtime_error', 'model returned no usable code: Unexpected token')] }, 'model'],
      [{ subtasks: [subtask('runtime_error', 'connect ECONNREFUSED sandbox')] }, 'flotilla'],
      [{ subtasks: [subtask('kill_switch')] }, 'flotilla'],
      [{ subtasks: [subtask('max_steps')] }, 'model'],
      [{ subtasks: [subtask('model_error', 'the model gave an empty answer')] }, 'model'],
      [{ status: 'cancelled' }, 'flotilla'],
    ];
    for (const [over, fault] of cases) expect([over, failureVerdict(view(over)).fault]).toEqual([over, fault]);
  });
});

describe('the report', () => {
  const result = (id: string, pass: boolean, fault?: 'model' | 'flotilla'): GoalResult => ({
    id,
    kind: 'compute',
    goal: id,
    pass,
    why: pass ? 'ok' : 'wrong',
    ...(fault && { fault }),
    status: 'completed',
    steps: 2,
    toolCalls: 1,
    tokens: 100,
    seconds: 3.2,
  });
  const run = (label: string, results: GoalResult[]): EvalRun => ({
    label,
    provider: 'openai-compatible',
    model: 'm',
    startedAt: 't',
    results,
  });

  it('sums passes and faults by whose they were', () => {
    const r = run('a', [result('x', true), result('y', false, 'model'), result('z', false, 'flotilla')]);
    expect(summarise(r)).toMatchObject({ total: 3, passed: 1, model: 1, flotilla: 1 });
    expect(formatRun(r).at(-1)).toBe('passed 1/3 (33%); failures: 1 model, 1 flotilla; 10 s');
  });

  it('puts two runs side by side and says what a change fixed or broke', () => {
    const lines = compareRuns(
      run('before', [result('x', false, 'model'), result('y', true)]),
      run('after', [result('x', true), result('y', false, 'model')]),
    );
    expect(lines.find((l) => l.startsWith('x'))).toMatch(/fixed$/);
    expect(lines.find((l) => l.startsWith('y'))).toMatch(/broke$/);
    expect(lines.at(-1)).toBe('after: passed 1/2, 1 model and 0 flotilla failures, 6 s');
  });
});
