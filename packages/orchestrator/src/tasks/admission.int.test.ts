// Needs a real Redis with a small maxmemory and noeviction, as in Compose: the point is that new
// tasks are refused before Redis itself refuses writes, and that every task accepted still finishes.
import type { TaskView } from '@flotilla/contracts';
import { startRedis, waitFor } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { type Harness, startHarness, startRole } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';
import { MemoryAdmission, parseMemoryInfo } from './admission.js';

const MAXMEMORY = 6 * 1024 * 1024;

describe('admission by Redis memory', () => {
  it('reads used_memory and maxmemory from INFO', () => {
    expect(parseMemoryInfo('# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:0\r\n')).toEqual({
      usedBytes: 1_048_576,
      maxBytes: 0,
    });
    expect(() => parseMemoryInfo('# Memory\r\n')).toThrow(/used_memory/);
  });

  it('refuses new tasks with 503 above the high-water mark, before Redis refuses a write; every accepted task completes', async () => {
    const redis = await startRedis({ reuse: false });
    const admin = new Redis(redis.url);
    let h: Harness | undefined;
    try {
      await admin.config('SET', 'maxmemory', String(MAXMEMORY));
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      // maxAgeMs 0: every submission reads INFO, so where the first refusal lands is exact.
      const admission = new MemoryAdmission(admin, { highWater: 0.7, maxAgeMs: 0 });
      const hh = await startHarness({ llm: offlineLlm(), redisUrl: redis.url, app: { admission, rateLimit: false } });
      h = hh;
      await startRole(hh, { role: 'researcher' });

      // Big goals fill the store quickly; each accepted task is planned and run meanwhile.
      const goal = (i: number) => `find fact ${i}: ${'x'.repeat(7000)}`;
      const accepted: string[] = [];
      let refusal: { statusCode: number; headers: Record<string, unknown>; body: string } | undefined;
      const statuses = new Set<number>();
      for (let i = 0; i < 3000 && !refusal; i++) {
        const res = await hh.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: goal(i) } });
        statuses.add(res.statusCode);
        if (res.statusCode === 202) accepted.push((res.json() as { taskId: string }).taskId);
        else refusal = { statusCode: res.statusCode, headers: res.headers, body: res.body };
      }
      // Only acceptances, then the gate's own refusal: never a Redis OOM error (a 5xx of another kind).
      expect([...statuses].sort()).toEqual([202, 503]);
      expect(accepted.length).toBeGreaterThan(10);
      expect(refusal?.headers['retry-after']).toBe('2');
      expect(refusal?.body).toMatch(/not accepting new tasks: the task store is 7\d% full/);
      const { usedBytes } = parseMemoryInfo(await admin.info('memory'));
      expect(usedBytes).toBeLessThan(MAXMEMORY);

      // Running work goes on above the mark: every accepted task finishes, and completes.
      const views = await waitFor(
        async () => {
          const all = await Promise.all(
            accepted.map(
              async (id) => (await hh.app.inject({ method: 'GET', url: `/v1/tasks/${id}` })).json() as TaskView,
            ),
          );
          return all.every((v) => ['completed', 'failed', 'cancelled'].includes(v.status)) ? all : undefined;
        },
        { what: 'every accepted task to finish', timeoutMs: 120_000 },
      );
      expect(views.filter((v) => v.status !== 'completed').map((v) => v.status)).toEqual([]);
      // The gate follows the store: refused while it stays above the mark. Finished tasks free a
      // little (queue and index entries), so on a slow run the store can settle just below it again.
      const after = parseMemoryInfo(await admin.info('memory'));
      const full = after.usedBytes / MAXMEMORY >= 0.7;
      const oneMore = await hh.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'one more' } });
      expect([full, oneMore.statusCode]).toEqual([full, full ? 503 : 202]);
    } finally {
      await h?.close();
      admin.disconnect();
      await redis.stop();
    }
  });
});
