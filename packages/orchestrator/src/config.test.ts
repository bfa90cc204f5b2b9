import { ConfigError, loadConfig } from '@flotilla/runtime';
import { describe, expect, it } from 'vitest';
import { isLoopback, orchestratorConfigProblems, orchestratorConfigSchema } from './config.js';

describe('orchestrator config: the sweep', () => {
  it('defaults the sweep interval, the requeue age and the deadline grace', () => {
    const config = loadConfig(orchestratorConfigSchema, { env: {} });
    expect(config).toMatchObject({
      TASK_SWEEP_INTERVAL_MS: 5000,
      TASK_REQUEUE_AFTER_MS: 5000,
      TASK_DEADLINE_GRACE_SECONDS: 60,
    });
    // No grace at all is a valid choice: fail the moment the deadline passes.
    expect(loadConfig(orchestratorConfigSchema, { env: { TASK_DEADLINE_GRACE_SECONDS: '0' } })).toMatchObject({
      TASK_DEADLINE_GRACE_SECONDS: 0,
    });
  });

  it('names each variable that is wrong, one line each', () => {
    let error: unknown;
    try {
      loadConfig(orchestratorConfigSchema, {
        env: { TASK_SWEEP_INTERVAL_MS: 'soon', TASK_REQUEUE_AFTER_MS: '0', TASK_DEADLINE_GRACE_SECONDS: '-1' },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.variable).sort()).toEqual([
      'TASK_DEADLINE_GRACE_SECONDS',
      'TASK_REQUEUE_AFTER_MS',
      'TASK_SWEEP_INTERVAL_MS',
    ]);
    expect((error as ConfigError).message.split('\n')).toHaveLength(3);
  });
});

describe('orchestrator config: auth fails closed', () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(orchestratorConfigSchema, { env, check: orchestratorConfigProblems });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };

  it('needs API_KEYS_FILE unless AUTH=off', () => {
    expect(problems({ LLM_PROVIDER: 'offline' })).toEqual([
      { variable: 'API_KEYS_FILE', message: expect.stringMatching(/^required/) },
    ]);
    expect(problems({ LLM_PROVIDER: 'offline', AUTH: 'off', HEALTH_HOST: '127.0.0.1' })).toEqual([]);
  });

  it('allows AUTH=off on loopback addresses only', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'localhost', 'orchestrator'])
      expect(problems({ LLM_PROVIDER: 'offline', AUTH: 'off', HEALTH_HOST: host }), host).toEqual([
        { variable: 'AUTH', message: expect.stringContaining('loopback') },
      ]);
    for (const host of ['127.0.0.1', '127.0.0.53', '::1', '0:0:0:0:0:0:0:1']) expect(isLoopback(host), host).toBe(true);
  });
});
