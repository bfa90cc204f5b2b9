import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  decodeTaskEventEntry,
  encodeTaskEvent,
  SubtaskEnvelope,
  TASK_EVENT_FIELD,
  TaskRequest,
  text,
} from './index.js';

describe('contracts', () => {
  it('defaults the contract version and rejects unknown request fields', () => {
    expect(TaskRequest.parse({ goal: 'x' }).v).toBe(1);
    expect(TaskRequest.safeParse({ goal: 'x', extra: 1 }).success).toBe(false);
  });

  it('round-trips the approval events through the stream format, and refuses an unknown decision', () => {
    const requested = {
      type: 'approval_requested' as const,
      taskId: 't',
      subtaskId: 's1',
      role: 'coder',
      approvalId: 'apr-1',
      tool: 'code.run',
      summary: '{"code":"print(1)"}',
      deadline: new Date(0).toISOString(),
      approvers: 'admin' as const,
    };
    expect(decodeTaskEventEntry([TASK_EVENT_FIELD, encodeTaskEvent(requested)])).toMatchObject(requested);
    const decided = { type: 'approval_decided', taskId: 't', subtaskId: 's1', approvalId: 'apr-1', by: 'ops' };
    expect(
      decodeTaskEventEntry([TASK_EVENT_FIELD, JSON.stringify({ ...decided, decision: 'deny', at: 'x' })]),
    ).toBeDefined();
    expect(decodeTaskEventEntry([TASK_EVENT_FIELD, JSON.stringify({ ...decided, decision: 'maybe', at: 'x' })])).toBe(
      undefined,
    );
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

  describe('text', () => {
    const short = text({ min: 1, max: 3 });

    it('counts code points, as the JSON Schema it documents does', () => {
      expect(short.safeParse('😀😀😀').success).toBe(true);
      expect(short.safeParse('😀😀😀😀').success).toBe(false);
      expect(short.safeParse('').success).toBe(false);
      expect(z.toJSONSchema(short)).toMatchObject({ type: 'string', minLength: 1, maxLength: 3 });
    });

    it('turns lone surrogates into U+FFFD, each one character', () => {
      expect(short.parse('a\ud800b')).toBe('a\ufffdb');
      expect(short.parse('\udc00\ud800\udc00')).toBe('\ufffd\ud800\udc00');
    });

    it('reports one problem per value, and documents what it forbids', () => {
      const key = text({ min: 1, max: 64, forbidden: ['__proto__'] });
      expect(key.safeParse('__proto__').error?.issues).toHaveLength(1);
      expect(z.toJSONSchema(key)).toMatchObject({ not: { enum: ['__proto__'] } });
      const goal = TaskRequest.shape.goal;
      expect(goal.safeParse('').error?.issues).toHaveLength(1);
      expect(goal.safeParse(' \u00a0\n').error?.issues[0]?.message).toBe('must not be blank');
      expect(goal.parse('  do it  ')).toBe('do it');
    });
  });
});

describe('task event stream entries', () => {
  it('decodes what encodeTaskEvent wrote, stamped with its time', () => {
    const at = new Date('2026-01-02T03:04:05.000Z');
    const json = encodeTaskEvent({ type: 'cancelled', taskId: 't1' }, at);
    expect(decodeTaskEventEntry([TASK_EVENT_FIELD, json])).toEqual({
      type: 'cancelled',
      taskId: 't1',
      at: '2026-01-02T03:04:05.000Z',
    });
  });

  it('reads nothing from entries that hold no TaskEvent under its field', () => {
    const good = encodeTaskEvent({ type: 'cancelled', taskId: 't1' });
    expect(decodeTaskEventEntry(['other', good])).toBeUndefined();
    expect(decodeTaskEventEntry([TASK_EVENT_FIELD, 'not json'])).toBeUndefined();
    expect(
      decodeTaskEventEntry([TASK_EVENT_FIELD, JSON.stringify({ type: 'nonsense', taskId: 't1' })]),
    ).toBeUndefined();
    expect(decodeTaskEventEntry([TASK_EVENT_FIELD, JSON.stringify([JSON.parse(good)])])).toBeUndefined();
    expect(decodeTaskEventEntry([])).toBeUndefined();
  });
});
