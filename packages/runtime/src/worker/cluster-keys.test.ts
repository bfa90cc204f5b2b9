// Redis Cluster runs a Lua script or a MULTI only when every key it names hashes to one slot, and
// BullMQ's flows put a task's parent (orchestrator.aggregate) and children (role.<role>) in different
// queues. So with a hash-tagged QUEUE_PREFIX every key one task and one queue use must share a slot:
// this computes Redis's CRC16 slot (cluster-key-slot, what ioredis's Cluster client routes by) of each
// of them. The control shows the plain default prefix does spread them, so the check can fail.
import { clusterHashTag, DEFAULT_PREFIX, queueNames, redisKeys, subtaskJobId } from '@flotilla/contracts';
import { QueueKeys } from 'bullmq';
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';

const taskId = '0f6e1c2a-7d4b-4c55-9a51-3c2d8e1f0a99';
const subtaskId = 's2';
/** A value for every argument a key builder takes: ids, a tenant, a status, an idempotency key. */
const SAMPLE_ARGS = [taskId, subtaskId, 'tenant-a', 'idem-key-1'];

/** Every key redisKeys names, each builder called with sample ids: a new builder is covered by itself. */
function flotillaKeys(prefix: string): string[] {
  return Object.entries(redisKeys(prefix)).map(([name, k]) => {
    if (typeof k === 'string') return k;
    const key = (k as (...a: string[]) => string)(...SAMPLE_ARGS.slice(0, k.length));
    expect(key, name).toBeTypeOf('string');
    return key;
  });
}

/** BullMQ's keys for every queue flotilla uses, and one subtask job's own keys in its role queue. */
function bullmqKeys(prefix: string): string[] {
  const qk = new QueueKeys(prefix);
  const queues = [
    queueNames.role('researcher'),
    queueNames.role('coder'),
    queueNames.aggregate,
    queueNames.plan,
    queueNames.sweep,
    queueNames.memoryCleanup,
  ];
  const job = qk.toKey(queueNames.role('researcher'), subtaskJobId(taskId, subtaskId));
  const parent = qk.toKey(queueNames.aggregate, taskId);
  const jobKeys = ['', ':lock', ':logs', ':dependencies', ':processed', ':failed', ':unsuccessful'].flatMap((s) => [
    `${job}${s}`,
    `${parent}${s}`,
  ]);
  return [...queues.flatMap((q) => Object.values(qk.getKeys(q))), ...jobKeys];
}

const slots = (keys: string[]) => new Set(keys.map((k) => calculateSlot(k)));

describe('Redis Cluster key layout', () => {
  it('every key starts with the prefix, so the prefix alone decides the slot', () => {
    const prefix = '{flotilla}';
    for (const key of [...flotillaKeys(prefix), ...bullmqKeys(prefix)])
      expect(key.startsWith(`${prefix}:`), key).toBe(true);
  });

  it('with a hash-tagged prefix, every key of a task and of every queue is in one slot', () => {
    for (const prefix of ['{flotilla}', '{tenant-7.flotilla}', '{acl-1a2b3c4d}']) {
      const keys = [...flotillaKeys(prefix), ...bullmqKeys(prefix)];
      expect(keys.length).toBeGreaterThan(40);
      expect([...slots(keys)]).toEqual([calculateSlot(clusterHashTag(prefix) as string)]);
    }
  });

  it('the control: the plain default prefix spreads them over many slots', () => {
    expect(clusterHashTag(DEFAULT_PREFIX)).toBeUndefined();
    expect(slots([...flotillaKeys(DEFAULT_PREFIX), ...bullmqKeys(DEFAULT_PREFIX)]).size).toBeGreaterThan(10);
  });

  it('clusterHashTag follows the cluster specification, as the slot function does', () => {
    const cases: [string, string | undefined][] = [
      ['{flotilla}', 'flotilla'],
      ['flotilla', undefined],
      ['{}flotilla', undefined],
      ['a{b}c{d}', 'b'],
      ['x{y', undefined],
    ];
    for (const [prefix, tag] of cases) {
      expect(clusterHashTag(prefix), prefix).toBe(tag);
      // Redis hashes a key by its tag when there is one, else by the whole key.
      const key = `${prefix}:task:1`;
      expect(calculateSlot(key), prefix).toBe(calculateSlot(tag ?? key));
    }
  });
});
