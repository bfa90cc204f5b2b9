import { describe, expect, it } from 'vitest';
import { createBudget } from '../budget/index.js';
import { RunJournal } from '../worker/journal.js';
import { approvalId, SUMMARY_MAX_CHARS, summarizeArguments } from './index.js';

describe('approvalId', () => {
  it('is the same for the same call of the same run, and differs for any other', () => {
    const id = approvalId('t1', 's1', 0);
    expect(id).toMatch(/^apr-[0-9a-f]{24}$/);
    expect(approvalId('t1', 's1', 0)).toBe(id);
    expect(new Set([id, approvalId('t1', 's1', 1), approvalId('t1', 's2', 0), approvalId('t2', 's1', 0)]).size).toBe(4);
  });
});

describe('summarizeArguments', () => {
  it('hides secret-named fields and secret-shaped values, keeps the rest', () => {
    const summary = summarizeArguments({
      amount: 5,
      password: 'hunter2-long-enough',
      nested: { apiKey: 'abc123456789' },
      url: 'https://bob:s3cretpass@example.com/x',
    });
    expect(summary).toContain('"amount":5');
    expect(summary).not.toContain('hunter2');
    expect(summary).not.toContain('abc123456789');
    expect(summary).not.toContain('s3cretpass');
    expect(summary).toContain('[REDACTED]');
  });

  it('cuts long arguments to SUMMARY_MAX_CHARS', () => {
    const summary = summarizeArguments({ text: 'x'.repeat(5000) });
    expect(summary).toHaveLength(SUMMARY_MAX_CHARS);
    expect(summary.endsWith('…')).toBe(true);
    // Control: short arguments are whole.
    expect(summarizeArguments({ text: 'short' })).toBe('{"text":"short"}');
  });
});

describe('RunJournal', () => {
  const reply = {
    content: 'hi',
    toolCalls: [],
    finishReason: 'stop' as const,
    usage: { promptTokens: 1, completionTokens: 1 },
    attempts: 1,
  };
  const ok = { ok: true as const, output: 1, attempts: 1, cached: false };

  it('replays recorded calls in order, then goes live', () => {
    const journal = new RunJournal({
      v: 1,
      entries: [
        { kind: 'llm', response: reply, tokens: 2 },
        { kind: 'tool', name: 'a', outcome: ok, toolCalls: 1 },
      ],
      writes: [],
      activeMs: 0,
      parkedMs: 0,
      parkedAt: 0,
    });
    expect(journal.replaying).toBe(true);
    expect(journal.next('llm')?.response).toBe(reply);
    expect(journal.next('tool', 'a')?.outcome).toBe(ok);
    expect(journal.replaying).toBe(false);
    expect(journal.next('llm')).toBeUndefined();
  });

  it('stops replaying when the run takes another path than its record', () => {
    const journal = new RunJournal({
      v: 1,
      entries: [
        { kind: 'tool', name: 'a', outcome: ok, toolCalls: 1 },
        { kind: 'llm', response: reply, tokens: 2 },
      ],
      writes: [],
      activeMs: 0,
      parkedMs: 0,
      parkedAt: 0,
    });
    expect(journal.next('tool', 'b')).toBeUndefined();
    // Nothing after a divergence is replayed, even an entry that would match.
    expect(journal.next('llm')).toBeUndefined();
  });
});

describe('a resumed budget', () => {
  it('goes on with the seconds it had left (spentMs), not a fresh window', () => {
    let now = 1_000_000;
    const limits = { maxSteps: 5, maxToolCalls: 5, maxSeconds: 10, maxTokens: 100 };
    const resumed = createBudget(limits, { now: () => now, spentMs: 4_000 });
    expect(resumed.remaining().ms).toBe(6_000);
    expect(resumed.usage().ms).toBe(4_000);
    now += 6_000;
    expect(resumed.stopReason).toBe('max_seconds');
    resumed.dispose();
    // Control: a fresh budget at the same moment has the whole window.
    const fresh = createBudget(limits, { now: () => now });
    expect(fresh.remaining().ms).toBe(10_000);
    fresh.dispose();
  });
});
