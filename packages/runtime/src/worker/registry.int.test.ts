// The planner learns what a role is for from the registry: what a worker publishes must come back
// from listRoles as the contracts' RoleInfo, examples included, through a real Redis.
import { RoleInfo, redisKeys } from '@flotilla/contracts';
import { testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorker } from './define.js';
import { deregister, heartbeat, listReplicas, listRoles } from './registry.js';

const { redisUrl } = testServices();
let redis: Redis;
let prefix: string;

beforeEach(() => {
  redis = new Redis(redisUrl);
  prefix = uniquePrefix('registry');
});
afterEach(() => redis.disconnect());

const Input = z.object({ task: z.string().min(1) });
const base = {
  role: 'calc',
  description: 'Computes',
  input: Input,
  output: z.string(),
  handler: async () => ({ stopReason: 'finish' as const, output: '' }),
};

describe('role examples', () => {
  it('go from the worker to the planner through the registry', async () => {
    const def = defineWorker({ ...base, examples: [{ goal: 'What is 2+2?', input: { task: 'Print 2+2.' } }] });
    const registration = {
      role: def.role,
      description: def.description,
      inputSchema: z.toJSONSchema(def.input),
      examples: def.examples,
      replica: 'calc-1',
      version: '1.0.0',
    };
    await heartbeat(redis, prefix, registration);
    await heartbeat(redis, prefix, { ...registration, role: 'plain', examples: undefined, replica: 'plain-1' });

    const roles = await listRoles(redis, prefix);
    expect(roles.map((r) => RoleInfo.parse(r))).toEqual(roles);
    expect(roles.find((r) => r.role === 'calc')?.examples).toEqual([
      { goal: 'What is 2+2?', input: { task: 'Print 2+2.' } },
    ]);
    expect(roles.find((r) => r.role === 'plain')).not.toHaveProperty('examples');
  });

  it('are refused at definition when one does not match the role input', () => {
    expect(() => defineWorker({ ...base, examples: [{ goal: 'x', input: { task: '' } }] })).toThrow(
      'worker role "calc": examples[0].input does not match its input schema',
    );
  });
});

describe('a role that scales to zero', () => {
  const registration = {
    role: 'calc',
    description: 'Computes',
    inputSchema: { type: 'object' },
    replica: 'calc-1',
    version: '1.0.0',
  };

  it('stays listed with 0 replicas once its last replica is gone, until it is forgotten', async () => {
    await heartbeat(redis, prefix, { ...registration, scaleToZero: { forgetAfterMs: 400 } });
    await heartbeat(redis, prefix, { ...registration, role: 'plain', replica: 'plain-1' });
    await deregister(redis, prefix, registration);
    await deregister(redis, prefix, { role: 'plain', replica: 'plain-1' });

    const roles = await listRoles(redis, prefix);
    expect(roles.map((r) => RoleInfo.parse(r))).toEqual(roles);
    // The role that did not opt in is left out at zero, as before.
    expect(roles).toEqual([
      {
        role: 'calc',
        description: 'Computes',
        replicas: 0,
        versions: [],
        inputSchema: { type: 'object' },
        scalesToZero: true,
      },
    ]);
    expect((await listReplicas(redis, prefix)).map((r) => [r.role, r.replicas.length, r.scalesToZero])).toEqual([
      ['calc', 0, true],
      ['plain', 0, false],
    ]);
    // Nothing beats any more: forgetAfterMs later the role is forgotten, and no longer planned.
    await waitFor(async () => (await listRoles(redis, prefix)).length === 0, { what: 'the role to be forgotten' });
  });

  it('keeps its entry for good again once it registers without scaling to zero', async () => {
    await heartbeat(redis, prefix, { ...registration, scaleToZero: { forgetAfterMs: 60_000 } });
    expect(await redis.pttl(redisKeys(prefix).roleMeta('calc'))).toBeGreaterThan(0);
    await heartbeat(redis, prefix, registration);
    expect(await redis.pttl(redisKeys(prefix).roleMeta('calc'))).toBe(-1);
    expect((await listRoles(redis, prefix))[0]).toMatchObject({ role: 'calc', replicas: 1, scalesToZero: false });
  });
});
