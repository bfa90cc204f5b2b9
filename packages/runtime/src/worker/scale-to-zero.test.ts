import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config/index.js';
import { scaleToZeroProblems, workerConfigSchema } from './run.js';

const load = (env: NodeJS.ProcessEnv) => loadConfig(workerConfigSchema, { env, check: scaleToZeroProblems });

describe('WORKER_SCALE_TO_ZERO and ROLE_FORGET_AFTER_S', () => {
  it('are off and a week by default, and read as a boolean and seconds', () => {
    expect(load({})).toMatchObject({ WORKER_SCALE_TO_ZERO: false, ROLE_FORGET_AFTER_S: 604_800 });
    expect(load({ WORKER_SCALE_TO_ZERO: 'yes', ROLE_FORGET_AFTER_S: '86400' })).toMatchObject({
      WORKER_SCALE_TO_ZERO: true,
      ROLE_FORGET_AFTER_S: 86_400,
    });
  });

  it('refuse what is not a boolean, and a forget delay within ten heartbeats, naming the variable', () => {
    const problems = (env: NodeJS.ProcessEnv) => {
      try {
        load(env);
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
      }
      return [];
    };
    expect(problems({ WORKER_SCALE_TO_ZERO: 'maybe' })).toEqual([
      { variable: 'WORKER_SCALE_TO_ZERO', message: expect.stringContaining('expected true or false') },
    ]);
    expect(problems({ WORKER_SCALE_TO_ZERO: 'true', ROLE_FORGET_AFTER_S: '30' })).toEqual([
      { variable: 'ROLE_FORGET_AFTER_S', message: expect.stringMatching(/^30 is too short: at least 50/) },
    ]);
    // Control: the same delay on a role that does not scale to zero is never used, so never refused.
    expect(problems({ ROLE_FORGET_AFTER_S: '30' })).toEqual([]);
  });
});
