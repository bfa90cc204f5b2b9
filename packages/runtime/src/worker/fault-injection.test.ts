import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { InjectedFaultError, withFaultInjection } from './fault-injection.js';
import { workerConfigSchema } from './run.js';

const job = {} as Job<unknown, string>;
const processor = async () => 'ran';

describe('withFaultInjection', () => {
  it('returns the processor itself at ratio 0', () => {
    expect(withFaultInjection(processor, 0)).toBe(processor);
  });

  it('fails the attempts whose draw falls under the ratio, with a retryable error, and runs the rest', async () => {
    const draws = [0.1, 0.5, 0.29, 0.3];
    const wrapped = withFaultInjection(processor, 0.3, () => draws.shift() ?? 1);
    const results = await Promise.allSettled([wrapped(job), wrapped(job), wrapped(job), wrapped(job)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'fulfilled']);
    const first = results[0] as PromiseRejectedResult;
    expect(first.reason).toBeInstanceOf(InjectedFaultError);
    expect((first.reason as InjectedFaultError).code).toBe('FLOTILLA_INJECTED_FAULT');
  });
});

describe('FAULT_INJECT_FAIL_RATIO', () => {
  it('defaults to 0 and refuses a value outside 0..1, naming the variable', () => {
    expect(loadConfig(workerConfigSchema, { env: {} }).FAULT_INJECT_FAIL_RATIO).toBe(0);
    expect(loadConfig(workerConfigSchema, { env: { FAULT_INJECT_FAIL_RATIO: '0.3' } }).FAULT_INJECT_FAIL_RATIO).toBe(
      0.3,
    );
    expect(() => loadConfig(workerConfigSchema, { env: { FAULT_INJECT_FAIL_RATIO: '1.5' } })).toThrow(
      /FAULT_INJECT_FAIL_RATIO: expected a number from 0 to 1/,
    );
  });
});
