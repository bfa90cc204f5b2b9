// Slow model (issue 16): a model server that answers 200, starts its body and stalls. The budget's
// deadline must abort the call, end the subtask with max_seconds and free the worker's slot. A real
// researcher process and a real socket left half-answered; only the model vendor is played.

import { fakeReply, startFakeOpenAI, stopAll, testServices, uniquePrefix } from '@flotilla/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { recordFigures, settled, sharedEnv, startOrchestrator, startResearcher, submit, teardown } from './harness.js';

const { redisUrl } = testServices();
const prefix = uniquePrefix('chaos-slow');
const cleanup = teardown(afterAll);

const settle = (base: string, id: string) => settled(base, id, 90_000);

describe('a model that stalls mid-response', () => {
  it('ends the subtask max_seconds at the deadline and frees the slot for the next task', async () => {
    // Stalls for the goal that asks for it, answers the rest.
    const llm = await startFakeOpenAI((req) =>
      JSON.stringify(req.body).includes('stall-me') ? fakeReply.stallAlways() : fakeReply.text('done'),
    );
    cleanup.push(() => llm.close());
    const env = sharedEnv(redisUrl, prefix);
    const orchestrator = await startOrchestrator(env);
    // One slot: the second task runs only if the stalled call gave it back.
    const researcher = await startResearcher('researcher-1', llm.url, { ...env, WORKER_CONCURRENCY: '1' });
    cleanup.push(() => stopAll([orchestrator.proc, researcher.proc]));

    const started = Date.now();
    const stalled = await settle(
      orchestrator.url,
      await submit(orchestrator.url, 'stall-me', { budget: { maxSeconds: 3 } }),
    );
    const stalledS = (Date.now() - started) / 1000;
    const next = await settle(orchestrator.url, await submit(orchestrator.url, 'answer me'));
    recordFigures('slowModel', { stalledTaskS: +stalledS.toFixed(1), budgetS: 3 });

    expect(llm.requests.some((r) => JSON.stringify(r.body).includes('stall-me'))).toBe(true);
    expect(stalled.subtasks.map((s) => s.stopReason)).toEqual(stalled.subtasks.map(() => 'max_seconds'));
    expect(next.status).toBe('completed');
    expect(next.subtasks.map((s) => [s.stopReason, s.replica])).toEqual([['finish', 'researcher-1']]);
  });
});
