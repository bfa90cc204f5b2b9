// Needs a real Redis and a real Chroma: the claim is about ordering and retries between the task's
// completion (Redis) and the memory writes (Chroma). Outages are made by a TCP proxy in front of the
// run's Chroma, so what answers once the outage ends is Chroma itself.
import { queueNames } from '@flotilla/contracts';
import { createMemory, type Memory, type MemoryStore } from '@flotilla/runtime';
import type { LlmClient } from '@flotilla/runtime/llm';
import { readTaskEvents } from '@flotilla/runtime/worker';
import { startTcpProxy, type TcpProxy, testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { AggregateJobResult } from '../flow/aggregate-job.js';
import { type Harness, startHarness, startRole, taskEnded } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

let h: Harness | undefined;
let proxy: TcpProxy | undefined;
let direct: Memory | undefined;
afterEach(async () => {
  // The proxy first: dropping its connections ends memory calls it holds, so the workers can drain.
  await proxy?.close();
  await h?.close();
  await direct?.deleteNamespace('answers');
  await direct?.deleteNamespace('notes');
  h = undefined;
  proxy = undefined;
  direct = undefined;
});

/** The offline model, counting the final-answer calls (the planner's carry a `plan` response format). */
function countingLlm(): { llm: LlmClient; answers: () => number } {
  const offline = offlineLlm();
  let answers = 0;
  return {
    answers: () => answers,
    llm: {
      provider: offline.provider,
      model: offline.model,
      chat: (request, options) => {
        if (request.responseFormat === undefined) answers++;
        return offline.chat(request, options);
      },
    },
  };
}

/** The orchestrator's memory behind the proxy, and the same collections reached directly, for checking. */
function memories(proxyUrl: string): { viaProxy: MemoryStore; direct: Memory } {
  const collectionPrefix = uniquePrefix('mem');
  const memory = createMemory({ url: testServices().chromaUrl, collectionPrefix }).forTenant('default');
  direct = memory;
  return { viaProxy: createMemory({ url: proxyUrl, collectionPrefix }), direct: memory };
}

const inMemory = (memory: Memory, taskId: string) =>
  waitFor(
    async () => {
      const [answers, notes] = await Promise.all([
        memory.query('answers', 'capital', { where: { taskId } }),
        memory.query('notes', 'capital', { n: 5, where: { taskId } }),
      ]);
      return answers.length && notes.length ? { answers, notes } : undefined;
    },
    { what: 'the answer and notes in memory', timeoutMs: 30_000 },
  );

async function start(memory: MemoryStore, llm: LlmClient): Promise<{ hh: Harness; taskId: string }> {
  const hh = await startHarness({ llm, memory });
  h = hh;
  await startRole(hh, {
    role: 'researcher',
    handler: async ({ question }) => ({ stopReason: 'finish', output: `notes on ${question}` }),
  });
  const res = await hh.app.inject({
    method: 'POST',
    url: '/v1/tasks',
    payload: { goal: 'the capital of France; the capital of Spain' },
  });
  return { hh, taskId: (res.json() as { taskId: string }).taskId };
}

describe('the final answer and memory', () => {
  it('completes the task while memory hangs, and keeps the answer once memory answers', async () => {
    // Chroma accepts connections and never replies: the old order (memory, then completion) hangs here.
    const chroma = await startTcpProxy(testServices().chromaUrl, 'hold');
    proxy = chroma;
    const { viaProxy, direct } = memories(chroma.url);
    const { hh, taskId } = await start(viaProxy, offlineLlm());

    const done = await taskEnded(hh, taskId);
    expect(done.status).toBe('completed');
    expect(done.answer).toContain('France');
    expect((await hh.orchestrator.store.get(taskId))?.remembered).toBe(false);
    expect(await direct.count('answers')).toBe(0);

    await chroma.set('forward');
    const { answers, notes } = await inMemory(direct, taskId);
    expect(answers.map((a) => [a.id, a.text])).toEqual([[`answer-${taskId}`, done.answer]]);
    expect(notes.map((n) => n.id).sort()).toEqual([`note-${taskId}-s1`, `note-${taskId}-s2`]);
    await waitFor(async () => (await hh.orchestrator.store.get(taskId))?.remembered, { what: 'remembered' });
  });

  it('retries memory alone after it refused: the answer is kept without answering again', async () => {
    // Nothing listens on the proxy's port: every memory call fails at once with ECONNREFUSED.
    const chroma = await startTcpProxy(testServices().chromaUrl, 'refuse');
    proxy = chroma;
    const { viaProxy, direct } = memories(chroma.url);
    const counting = countingLlm();
    const { hh, taskId } = await start(viaProxy, counting.llm);

    const done = await taskEnded(hh, taskId);
    expect(done.status).toBe('completed');
    const aggregate = new Queue(queueNames.aggregate, { connection: hh.connection, prefix: hh.prefix });
    try {
      // The attempt that completed the task failed on memory, and the job waits for its retry.
      await waitFor(async () => ((await aggregate.getJob(taskId))?.attemptsMade ?? 0) >= 1, {
        what: 'a failed memory attempt',
      });
      expect((await hh.orchestrator.store.get(taskId))?.remembered).toBe(false);

      await chroma.set('forward');
      const { answers } = await inMemory(direct, taskId);
      expect(answers.map((a) => a.text)).toEqual([done.answer]);
      const job = await waitFor(
        async () => {
          const j = await aggregate.getJob(taskId);
          return j?.finishedOn ? j : undefined;
        },
        { what: 'the aggregation job to end', timeoutMs: 30_000 },
      );
      expect(job.returnvalue as AggregateJobResult).toEqual({ outcome: 'completed', partial: false, remembered: true });
      expect(job.attemptsMade).toBeGreaterThan(1);
    } finally {
      await aggregate.close();
    }
    // Answered once, completed once: the retry only wrote to memory.
    expect(counting.answers()).toBe(1);
    const completions = (await readTaskEvents(hh.redis, hh.prefix, taskId)).filter((e) => e.event.type === 'completed');
    expect(completions).toHaveLength(1);
    expect((await hh.orchestrator.store.get(taskId))?.remembered).toBe(true);
  });
});
