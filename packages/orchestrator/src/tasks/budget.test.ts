import { describe, expect, it } from 'vitest';
import { splitBudget } from './budget.js';

const limits = { maxSteps: 25, maxToolCalls: 12, maxSeconds: 60, maxTokens: 100_000 };

describe('splitBudget', () => {
  it('divides countable limits between parallel subtasks and gives each the time left', () => {
    const now = 1_000_000;
    expect(splitBudget(limits, 4, now + 30_000, now)).toEqual({
      maxSteps: 6,
      maxToolCalls: 3,
      maxTokens: 25_000,
      maxSeconds: 30,
    });
  });

  it('never hands out less than 1 of anything', () => {
    const now = 0;
    const slice = splitBudget({ maxSteps: 2, maxToolCalls: 1, maxSeconds: 5, maxTokens: 3 }, 8, now - 10_000, now);
    expect(slice).toEqual({ maxSteps: 1, maxToolCalls: 1, maxTokens: 1, maxSeconds: 1 });
  });

  it('does not give a subtask more time than the task itself had', () => {
    expect(splitBudget(limits, 1, 10_000_000, 0).maxSeconds).toBe(60);
  });
});
