// The planner learns what a role is for from the registry: what a worker publishes must come back
// from listRoles as the contracts' RoleInfo, examples included, through a real Redis.
import { RoleInfo } from '@flotilla/contracts';
import { testServices, uniquePrefix } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorker } from './define.js';
import { heartbeat, listRoles } from './registry.js';

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
