import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BudgetLimits } from '@flotilla/contracts';
import { waitFor } from '@flotilla/test-utils';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Budget,
  budgetFromEnvelope,
  createBudget,
  DeadlineExceededError,
  RunCancelledError,
  stopReasonOf,
  tightenLimits,
} from './index.js';

const limits: BudgetLimits = { maxSteps: 3, maxToolCalls: 2, maxSeconds: 60, maxTokens: 100 };

const budgets: Budget[] = [];
const track = (b: Budget) => {
  budgets.push(b);
  return b;
};
afterEach(() => {
  for (const b of budgets.splice(0)) b.dispose();
});

describe('tightenLimits', () => {
  it('takes the smaller value per field and keeps the container value for fields the task omits', () => {
    expect(tightenLimits(limits, { maxSteps: 1, maxSeconds: 5 })).toEqual({ ...limits, maxSteps: 1, maxSeconds: 5 });
  });

  it('clamps a larger ask to the container limit: a task budget never loosens', () => {
    expect(tightenLimits(limits, { maxSteps: 1000, maxToolCalls: 1000, maxSeconds: 1e6, maxTokens: 1e9 })).toEqual(
      limits,
    );
  });

  it('never exceeds the container or the ask, for any inputs', () => {
    const limit = fc.record({
      maxSteps: fc.integer({ min: 1, max: 1e6 }),
      maxToolCalls: fc.integer({ min: 1, max: 1e6 }),
      maxSeconds: fc.double({ min: 0.001, max: 1e6, noNaN: true }),
      maxTokens: fc.integer({ min: 1, max: 1e9 }),
    });
    fc.assert(
      fc.property(limit, fc.option(limit, { nil: undefined }), (container, ask) => {
        const out = tightenLimits(container, ask);
        for (const k of ['maxSteps', 'maxToolCalls', 'maxSeconds', 'maxTokens'] as const) {
          expect(out[k]).toBeLessThanOrEqual(container[k]);
          if (ask) expect(out[k]).toBe(Math.min(container[k], ask[k]));
        }
      }),
    );
  });
});

describe('createBudget', () => {
  it('refuses the (N+1)th step with max_steps and does not count it', () => {
    const b = track(createBudget(limits));
    expect([b.chargeStep(), b.chargeStep(), b.chargeStep()]).toEqual([null, null, null]);
    expect(b.chargeStep()).toBe('max_steps');
    expect(b.stopReason).toBe('max_steps');
    expect(b.usage().steps).toBe(3);
  });

  it('refuses the (N+1)th tool call with max_tool_calls', () => {
    const b = track(createBudget(limits));
    expect([b.chargeToolCall(), b.chargeToolCall()]).toEqual([null, null]);
    expect(b.chargeToolCall()).toBe('max_tool_calls');
    expect(b.usage().toolCalls).toBe(2);
    expect(b.remaining().toolCalls).toBe(0);
  });

  it('stops on tokens once the total is above the limit, and still counts what was spent', () => {
    const b = track(createBudget(limits));
    expect(b.chargeTokens(60)).toBeNull();
    expect(b.chargeTokens(40)).toBeNull(); // exactly at the limit is fine
    expect(b.chargeTokens(1)).toBe('max_tokens');
    expect(b.chargeTokens(9)).toBe('max_tokens');
    expect(b.usage().tokens).toBe(110);
  });

  it('keeps the first stop reason: later charges of other kinds return it', () => {
    const b = track(createBudget(limits));
    b.chargeTokens(500);
    expect(b.chargeStep()).toBe('max_tokens');
    expect(b.chargeToolCall()).toBe('max_tokens');
    expect(b.usage().steps).toBe(0);
  });

  it('aborts its signal at the deadline with a max_seconds reason', async () => {
    const b = track(createBudget({ ...limits, maxSeconds: 0.05 }));
    await waitFor(() => b.signal.aborted, { what: 'deadline' });
    expect(b.stopReason).toBe('max_seconds');
    expect(b.signal.reason).toBeInstanceOf(DeadlineExceededError);
    expect(stopReasonOf(b.signal.reason)).toBe('max_seconds');
    expect(b.chargeStep()).toBe('max_seconds');
  });

  it('aborts with cancelled when the parent signal aborts', () => {
    const parent = new AbortController();
    const b = track(createBudget(limits, { signal: parent.signal }));
    parent.abort(new Error('job cancelled'));
    expect(b.signal.aborted).toBe(true);
    expect(b.stopReason).toBe('cancelled');
    expect(b.signal.reason).toBeInstanceOf(RunCancelledError);
    expect((b.signal.reason as Error).cause).toEqual(new Error('job cancelled'));
  });

  it('starts cancelled when the parent is already aborted', () => {
    const b = track(createBudget(limits, { signal: AbortSignal.abort() }));
    expect(b.signal.aborted).toBe(true);
    expect(b.stopReason).toBe('cancelled');
  });

  it('reports ratios and remaining from the injected clock, and freezes ms at dispose', () => {
    let t = 1_000_000;
    const b = track(createBudget({ ...limits, maxSeconds: 10 }, { now: () => t }));
    b.chargeStep();
    b.chargeTokens(25);
    t += 5000;
    expect(b.ratios()).toEqual({ steps: 1 / 3, tool_calls: 0, seconds: 0.5, tokens: 0.25 });
    expect(b.remaining()).toEqual({ steps: 2, toolCalls: 2, tokens: 75, ms: 5000 });
    b.dispose();
    t += 5000;
    expect(b.usage()).toEqual({ steps: 1, toolCalls: 0, tokens: 25, ms: 5000 });
    b.dispose(); // idempotent
    expect(b.signal.aborted).toBe(false);
  });
});

describe('budgetFromEnvelope', () => {
  it('lets the earlier of deadline and maxSeconds win', () => {
    const t = 5_000_000;
    const now = () => t;
    const early = track(budgetFromEnvelope({ budget: limits, deadline: t + 2000 }, limits, { now }));
    const late = track(budgetFromEnvelope({ budget: limits, deadline: t + 600_000 }, limits, { now }));
    expect(early.remaining().ms).toBe(2000);
    expect(late.remaining().ms).toBe(60_000);
  });

  it('is over at once when the deadline has already passed', () => {
    const b = track(budgetFromEnvelope({ budget: limits, deadline: Date.now() - 1 }, limits));
    expect(b.signal.aborted).toBe(true);
    expect(b.stopReason).toBe('max_seconds');
  });

  it('cannot loosen the container limits', () => {
    const generous = { maxSteps: 50, maxToolCalls: 50, maxSeconds: 600, maxTokens: 1e6 };
    const b = track(budgetFromEnvelope({ budget: generous, deadline: Date.now() + 600_000 }, limits));
    expect(b.limits).toEqual(limits);
    for (let i = 0; i < limits.maxToolCalls; i++) expect(b.chargeToolCall()).toBeNull();
    expect(b.chargeToolCall()).toBe('max_tool_calls');
  });
});

describe('deadline and in-flight I/O', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    server?.close();
    server = undefined;
  });

  it('aborts a fetch to a server that never answers, with stop reason max_seconds', async () => {
    let received = false;
    server = createServer(() => {
      received = true; // and never respond
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;

    const b = track(createBudget({ ...limits, maxSeconds: 0.3 }));
    const error = await fetch(`http://127.0.0.1:${port}/slow`, { signal: b.signal }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(received).toBe(true);
    expect(error).toBeDefined();
    expect(stopReasonOf(error)).toBe('max_seconds');
    expect(b.stopReason).toBe('max_seconds');
  });
});
