// Needs the run's Redis: what the store writes to a task after it is gone (a retried planning or
// aggregation job whose task expired) must leave nothing behind, least of all a key with no expiry.
import { redisKeys } from '@flotilla/contracts';
import { testServices, uniquePrefix } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskStore } from './store.js';

const redis = new Redis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
const prefix = uniquePrefix('store');
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const limits = { maxSteps: 5, maxToolCalls: 5, maxSeconds: 30, maxTokens: 1000 };
const plan = [{ subtaskId: 's1', role: 'researcher', input: { question: 'q' } }];

describe('TaskStore writes to a task', () => {
  it('keep the task hash’s expiry, and do not bring back a task that expired', async () => {
    const store = new TaskStore(redis, prefix, 60);
    const { record } = await store.create({
      taskId: 't-live',
      request: { v: 1, goal: 'g' },
      idempotencyKey: undefined,
      limits,
      deadline: Date.now() + 60_000,
      traceId: undefined,
    });
    const live = redisKeys(prefix).task(record.taskId);
    await store.addOrchestratorTokens('t-live', 42);
    await store.markRemembered('t-live');
    await store.setSubtaskErrors('t-live', { s1: 'boom' });
    expect(await store.savePlan('t-live', plan)).toEqual(plan);
    expect(await redis.hmget(live, 'orchestratorTokens', 'remembered', 'subtaskErrors')).toEqual([
      '42',
      '1',
      JSON.stringify({ s1: 'boom' }),
    ]);
    const ttl = await redis.pttl(live);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);

    // The same writes to a task whose hash has expired (deleted here) create nothing.
    const gone = redisKeys(prefix).task('t-gone');
    await store.addOrchestratorTokens('t-gone', 42);
    await store.markRemembered('t-gone');
    await store.setSubtaskErrors('t-gone', { s1: 'boom' });
    expect(await store.savePlan('t-gone', plan)).toEqual(plan);
    expect(await redis.exists(gone)).toBe(0);
    // Nothing under the prefix is left without an expiry but the indexes the store trims itself.
    for (const key of await redis.keys(`${prefix}:task:*`)) expect(await redis.pttl(key)).toBeGreaterThan(0);
  });
});
