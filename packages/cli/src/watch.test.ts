import type { TaskView } from '@flotilla/contracts';
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from './outcome.js';
import { COLOR, visibleLength } from './style.js';
import { bar, eventLine, redraw, renderOutcome, renderTask } from './watch.js';

const view = (over: Partial<TaskView> = {}): TaskView => ({
  v: 1,
  taskId: '7d0c6a5e-0000-4000-8000-000000000001',
  status: 'running',
  goal: 'fetch a page; write code',
  budget: { maxSteps: 4, maxToolCalls: 8 },
  plan: [],
  subtasks: [
    {
      subtaskId: 's1',
      role: 'researcher',
      input: {},
      state: 'completed',
      replica: 'researcher-2',
      runs: 1,
      stopReason: 'finish',
      usage: { steps: 2, toolCalls: 8, tokens: 120, ms: 1500 },
    },
    { subtaskId: 's2', role: 'coder', input: {}, state: 'active', replica: 'coder-1', runs: 2 },
  ],
  stopReasons: {},
  usage: { steps: 2, toolCalls: 8, tokens: 120, ms: 1500 },
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:01.000Z',
  ...over,
});

describe('renderTask', () => {
  it('shows each subtask with its state, role and replica, and its usage as bars against the budget', () => {
    const text = renderTask(view()).join('\n');
    expect(text).toContain(`task ${view().taskId}  running`);
    expect(text).toMatch(/s1 {2}researcher {2}completed {2}on researcher-2/);
    expect(text).toMatch(/s2 {2}coder {2}active {2}on coder-1 {2}\(run 2\)/);
    // 2 of 4 steps is half the bar; 8 of 8 tool calls fills it.
    expect(text).toContain('steps ████░░░░ 2/4');
    expect(text).toContain('tools ████████ 8/8');
    // No limit asked for tokens: a figure, no bar.
    expect(text).toMatch(/tokens 120(?!\/)/);
    expect(text).toContain('total 2 steps · 8 tool calls · 120 tokens · 1.5s');
  });

  it('says the services’ limits apply when the task set no budget, and plans before subtasks exist', () => {
    const text = renderTask(view({ budget: undefined, subtasks: [], status: 'planning' })).join('\n');
    expect(text).toContain('planning…');
    expect(text).toContain('no task budget');
    expect(text).not.toContain('█');
  });

  it('cuts the goal to the width so a redraw never wraps', () => {
    const lines = renderTask(view({ goal: 'x'.repeat(500) }), { width: 60 });
    expect(Math.max(...lines.map(visibleLength))).toBeLessThanOrEqual(60);
    expect(lines[1]).toMatch(/…$/);
  });

  it('is plain text unless given colours', () => {
    expect(renderTask(view()).join('')).not.toContain('\x1b[');
    expect(renderTask(view(), { style: COLOR }).join('')).toContain('\x1b[32mcompleted');
  });

  it('flags stop reasons other than finish and shows errors', () => {
    const v = view();
    v.subtasks[1] = { ...v.subtasks[1], state: 'failed', stopReason: 'max_steps', error: 'ran\nout' } as never;
    const text = renderTask(v).join('\n');
    expect(text).toContain('max_steps');
    expect(text).toContain('ran out');
    expect(text).not.toMatch(/s1.*finish/);
  });
});

describe('approvals in the live view', () => {
  const requested = {
    type: 'approval_requested' as const,
    taskId: view().taskId,
    at: '2026-01-01T00:00:02.000Z',
    subtaskId: 's2',
    role: 'coder',
    approvalId: 'apr-1',
    tool: 'repo.write',
    summary: 'write\nsrc/a.ts (120 bytes)',
    deadline: '2026-01-01T00:05:00.000Z',
    approvers: 'admin',
  };
  const now = Date.parse('2026-01-01T00:00:50.000Z');

  it('shows a waiting approval under its subtask: tool, time left, summary and the command that decides it', () => {
    const lines = renderTask(view(), { approvals: [requested], now });
    const at = lines.findIndex((l) => l.includes('waiting for approval'));
    // Under s2 (after its header and usage lines), not under s1.
    expect(at).toBeGreaterThan(lines.findIndex((l) => l.includes('s2  coder')));
    expect(lines[at]).toContain('repo.write  4m 10s left  write src/a.ts (120 bytes)');
    expect(lines[at + 1]).toContain('flotilla approve apr-1 --reason');
    // Control: without approvals there is no such line.
    expect(renderTask(view(), { now }).join('\n')).not.toContain('waiting for approval');
  });

  it('says overdue past the deadline, and shows an approval whose subtask the view does not list yet', () => {
    const text = renderTask(view({ subtasks: [] }), {
      approvals: [requested],
      now: Date.parse('2026-01-01T00:06:00.000Z'),
    }).join('\n');
    expect(text).toContain('s2  coder');
    expect(text).toMatch(/repo\.write {2}overdue/);
  });

  it('writes the approval events as lines when not on a terminal', () => {
    expect(eventLine(requested)).toMatch(/^approval {2}s2 coder waits for approval apr-1: repo\.write write src/);
    expect(
      eventLine({
        type: 'approval_decided',
        taskId: 't',
        at: '',
        subtaskId: 's2',
        approvalId: 'apr-1',
        decision: 'approve',
        by: 'ops',
      }),
    ).toBe('decided   s2 approval apr-1: approve by ops');
  });
});

describe('bar', () => {
  it('fills in proportion, caps at full, and is empty without a limit', () => {
    expect(bar(0, 10)).toBe('░░░░░░░░');
    expect(bar(5, 10)).toBe('████░░░░');
    expect(bar(30, 10)).toBe('████████');
    expect(bar(3, undefined)).toBe('');
  });
});

describe('redraw', () => {
  it('goes up over the previous frame and clears it, and writes the first frame as is', () => {
    expect(redraw(0, ['a', 'b'])).toBe('a\nb\n');
    expect(redraw(2, ['c'])).toBe('\x1b[2A\r\x1b[Jc\n');
  });
});

describe('the outcome', () => {
  it('maps each ending to its own exit status', () => {
    expect(exitCodeFor({ status: 'completed', partial: false })).toBe(0);
    expect(exitCodeFor({ status: 'completed', partial: true })).toBe(5);
    expect(exitCodeFor({ status: 'failed' })).toBe(3);
    expect(exitCodeFor({ status: 'cancelled' })).toBe(4);
    expect(exitCodeFor({ status: 'running' })).toBeUndefined();
  });

  it('prints the answer, then how the task ended', () => {
    const lines = renderOutcome(view({ status: 'completed', answer: 'forty-two', traceId: 'abc' }));
    expect(lines).toContain('forty-two');
    expect(lines.at(-1)).toBe('completed · trace abc');
  });

  it('writes one line per event when not on a terminal', () => {
    expect(
      eventLine({ type: 'subtask_started', taskId: 't', at: '', subtaskId: 's1', role: 'researcher', replica: 'r-1' }),
    ).toBe('started   s1 researcher on r-1');
  });
});
