// Chroma down (issue 16): memory's server is SIGKILLed while tasks run, then started again on the same
// port and data. Memory tools must fail with a typed error (`unavailable`, naming memory), the researcher
// must go on without memory and stay ready, every task must still complete, flagged partial, and once
// Chroma is back new tasks are whole again and the answers kept during the outage reach memory. A real
// Chroma process, a real researcher and orchestrator; only the model vendor is played.

import { createMemory } from '@flotilla/runtime';
import {
  fakeReply,
  type RecordedRequest,
  startChroma,
  startFakeOpenAI,
  stopAll,
  testServices,
  uniquePrefix,
  waitFor,
} from '@flotilla/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { recordFigures, settled, sharedEnv, startOrchestrator, startResearcher, submit, teardown } from './harness.js';

const { redisUrl } = testServices();
const cleanup = teardown(afterAll);
const settle = (base: string, id: string) => settled(base, id, 120_000);

/** Tool results the model has been shown so far in this conversation. */
const toolTurns = (req: RecordedRequest) =>
  ((req.body as { messages?: { role: string }[] }).messages ?? []).filter((m) => m.role === 'tool').length;

describe('Chroma down', () => {
  it('fails memory tools `unavailable`, completes tasks partial, and recovers when Chroma returns', async () => {
    const chroma = await startChroma({ reuse: false });
    cleanup.push(() => chroma.stop());
    // The researcher's model searches memory, saves a note, then answers: two memory calls a subtask.
    const llm = await startFakeOpenAI((req) => {
      const turns = toolTurns(req);
      if (turns === 0) return fakeReply.toolCall('memory_search', { query: 'earlier findings' });
      if (turns === 1) return fakeReply.toolCall('notes_write', { text: 'a finding worth keeping' });
      return fakeReply.text('the answer, from what the tools gave');
    });
    cleanup.push(() => llm.close());

    const env = { ...sharedEnv(redisUrl, uniquePrefix('chaos-chroma'), chroma.url), MEMORY_EMBEDDING: 'hash' };
    const orchestrator = await startOrchestrator(env);
    const researcher = await startResearcher('researcher-1', llm.url, env);
    cleanup.push(() => stopAll([orchestrator.proc, researcher.proc]));

    const answers = createMemory({ url: chroma.url }).forTenant('default');
    const run = async (goal: string) => settle(orchestrator.url, await submit(orchestrator.url, goal));

    // Chroma up: whole tasks, and their answers kept.
    const before = await run('before the outage');
    expect(before).toMatchObject({ status: 'completed', partial: false });
    expect(before.subtasks[0]).not.toHaveProperty('degraded');
    await waitFor(async () => (await answers.count('answers')) >= 1 || undefined, { what: 'the first answer kept' });

    // Chroma killed: tasks still complete, each flagged partial, the subtask naming memory as missing.
    await chroma.kill?.();
    const during = await Promise.all(Array.from({ length: 6 }, (_, i) => run(`during the outage ${i}`)));
    for (const view of during) {
      expect(view).toMatchObject({ status: 'completed', partial: true });
      expect(view.subtasks.map((s) => [s.state, s.stopReason, s.degraded])).toEqual([
        ['completed', 'finish', ['memory']],
      ]);
    }
    // The model was shown a typed tool error, not a crash, and both memory tools got one.
    const shown = llm.requests.map((r) => JSON.stringify(r.body)).filter((b) => b.includes('memory is unavailable'));
    expect(shown.some((b) => b.includes('tool memory.search'))).toBe(true);
    expect(shown.some((b) => b.includes('tool notes.write'))).toBe(true);
    expect(shown.every((b) => b.includes('tool_error'))).toBe(true);
    // Memory is optional to a worker: it stays ready, and says what it runs without.
    const ready = await fetch(`${researcher.healthUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', degraded: [{ check: 'chroma' }] });

    // Chroma back on the same port and data: a new task is whole again once the breaker lets a call
    // through, and the answers of the outage's tasks reach memory as the aggregator's retries come round.
    await chroma.restart?.();
    const backAt = Date.now();
    let attempts = 0;
    const whole = await waitFor(
      async () => {
        attempts++;
        const view = await run(`after the outage ${attempts}`);
        return view.partial === false ? view : undefined;
      },
      { what: 'a task that is whole again', timeoutMs: 90_000, intervalMs: 500 },
    );
    const recoveredS = (Date.now() - backAt) / 1000;
    expect(whole.subtasks[0]).not.toHaveProperty('degraded');
    const expected = 1 + during.length + attempts;
    await waitFor(async () => (await answers.count('answers')) >= expected || undefined, {
      what: `all ${expected} answers kept, those of the outage included`,
      timeoutMs: 150_000,
      intervalMs: 1000,
    });
    const rememberedS = (Date.now() - backAt) / 1000;
    recordFigures('chromaDown', {
      tasksDuringOutage: during.length,
      partialDuringOutage: during.filter((v) => v.partial).length,
      wholeAgainS: +recoveredS.toFixed(1),
      answersKeptS: +rememberedS.toFixed(1),
    });
  });
});
