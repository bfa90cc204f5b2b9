// Needs real processes and a real Redis: the point is that a switch flipped in one process reaches
// another process's gateway through Redis pub/sub. Runs the built fixture: `npx tsc -b packages/runtime/tsconfig.json` first.
import { fileURLToPath } from 'node:url';
import { type RunningProcess, startProcess, stopAll, testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { readKillSwitch, setKillSwitch } from './index.js';

const fixture = fileURLToPath(new URL('../../dist/tools/fixtures/kill-switch-replica.js', import.meta.url));
const { redisUrl } = testServices();

let prefix: string;
let redis: Redis;
let procs: RunningProcess[];

beforeEach(() => {
  prefix = uniquePrefix('killswitch');
  redis = new Redis(redisUrl);
  procs = [];
});

afterEach(async () => {
  await stopAll(procs);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const lines = (p: RunningProcess) => p.jsonLines();

it('a switch flipped in this process stops the tool in another process', async () => {
  const replica = startProcess(process.execPath, [fixture], { env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix } });
  procs.push(replica);
  await waitFor(() => lines(replica).some((l) => l.event === 'ready'), {
    what: `replica ready (stderr: ${replica.stderr()})`,
  });

  const flippedAt = Date.now();
  await setKillSwitch(redis, prefix, { tools: ['probe.*'] });
  // The 1 s propagation goal is measured by the benchmark; here a generous bound only guards against hangs.
  const blocked = await waitFor(() => lines(replica).find((l) => l.event === 'blocked'), {
    timeoutMs: 5000,
    what: 'the replica to see the kill switch',
  });

  expect(blocked).toMatchObject({ stopReason: 'kill_switch', code: 'kill_switch' });
  expect(blocked.at as number).toBeGreaterThanOrEqual(flippedAt);
  expect(await readKillSwitch(redis, prefix)).toEqual({ global: false, noWrites: false, tools: ['probe.*'] });
  expect(await replica.exited).toBe(0);
});
