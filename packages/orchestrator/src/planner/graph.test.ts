import type { PlannedSubtask } from '@flotilla/contracts';
import { describe, expect, it } from 'vitest';
import { findCycle, nextSubtasks, type Progress } from './graph.js';

const s = (subtaskId: string, ...dependsOn: string[]): PlannedSubtask => ({
  subtaskId,
  role: 'r',
  input: {},
  ...(dependsOn.length ? { dependsOn } : {}),
});

describe('findCycle', () => {
  it('finds none in a plan without dependencies or in a diamond', () => {
    expect(findCycle([s('s1'), s('s2')])).toBeUndefined();
    expect(findCycle([s('s1'), s('s2', 's1'), s('s3', 's1'), s('s4', 's2', 's3')])).toBeUndefined();
  });

  it('spells out a cycle, however long, with its first id repeated', () => {
    expect(findCycle([s('s1', 's1')])).toEqual(['s1', 's1']);
    expect(findCycle([s('s1'), s('s2', 's4'), s('s3', 's2'), s('s4', 's3')])).toEqual(['s2', 's4', 's3', 's2']);
  });
});

describe('nextSubtasks', () => {
  const progress =
    (states: Record<string, Progress>) =>
    (id: string): Progress =>
      states[id] ?? 'pending';

  it('makes ready the subtasks whose dependencies all ended ok, and only those', () => {
    const plan = [s('s1'), s('s2'), s('s3', 's1'), s('s4', 's1', 's2'), s('s5', 's3')];
    const { ready, blocked } = nextSubtasks(plan, progress({ s1: 'ok' }));
    expect(ready.map((r) => r.subtaskId)).toEqual(['s2', 's3']);
    expect(blocked.size).toBe(0);
  });

  it('blocks the dependents of a failed subtask, directly and further down, naming the failed one', () => {
    const plan = [s('s1'), s('s2', 's1'), s('s3', 's2'), s('s4')];
    const { ready, blocked } = nextSubtasks(plan, progress({ s1: 'failed', s4: 'ok' }));
    expect(ready).toEqual([]);
    expect([...blocked]).toEqual([
      ['s2', 's1'],
      ['s3', 's1'],
    ]);
  });
});
