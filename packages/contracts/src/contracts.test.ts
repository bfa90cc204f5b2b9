import { describe, expect, it } from 'vitest';
import { SubtaskEnvelope, TaskRequest } from './index.js';

describe('contracts', () => {
  it('defaults the contract version and rejects unknown request fields', () => {
    expect(TaskRequest.parse({ goal: 'x' }).v).toBe(1);
    expect(TaskRequest.safeParse({ goal: 'x', extra: 1 }).success).toBe(false);
  });

  it('rejects a task budget that names an unknown limit', () => {
    const r = TaskRequest.safeParse({ goal: 'x', budget: { maxSteps: 2, maxFun: 3 } });
    expect(r.success).toBe(false);
  });

  it('accepts a W3C traceparent and rejects a malformed one', () => {
    const base = {
      taskId: 't',
      subtaskId: 's',
      role: 'researcher',
      input: {},
      budget: { maxSteps: 1, maxToolCalls: 1, maxSeconds: 1, maxTokens: 1 },
      deadline: Date.now() + 1000,
    };
    expect(
      SubtaskEnvelope.safeParse({ ...base, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' })
        .success,
    ).toBe(true);
    expect(SubtaskEnvelope.safeParse({ ...base, traceparent: 'nope' }).success).toBe(false);
  });
});
