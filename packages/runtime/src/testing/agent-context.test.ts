import { afterEach, describe, expect, it } from 'vitest';
import type { AgentContext } from '../worker/index.js';
import { runToolLoop } from '../worker/index.js';
import { testAgentContext } from './index.js';

let ctx: AgentContext | undefined;
afterEach(() => ctx?.budget.dispose());

describe('testAgentContext', () => {
  it("runs a role's tool loop on the offline model with no Redis, within its budget", async () => {
    ctx = testAgentContext({ role: 'summarizer', limits: { maxSteps: 3 } });
    const result = await runToolLoop(ctx, {
      system: 'Summarize.',
      user: 'summarize the plot of Hamlet',
      finish: (answer, observations) => ({ answer, observations: observations.length }),
    });
    expect(result.stopReason).toBe('finish');
    expect(result.output).toMatchObject({ answer: expect.stringContaining('summarize the plot of Hamlet') });
    expect(ctx.budget.usage()).toMatchObject({ steps: 1, toolCalls: 0 });
    expect(ctx.envelope).toMatchObject({ role: 'summarizer', budget: { maxSteps: 3 } });
  });

  it('denies a tool call as the gateway denies a tool the role does not have', async () => {
    ctx = testAgentContext();
    expect(await ctx.tools.call('http.get', { url: 'http://example.com' })).toMatchObject({
      ok: false,
      stopReason: 'policy_denied',
      code: 'unknown_tool',
    });
  });
});
