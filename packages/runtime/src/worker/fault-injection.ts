import type { Job, Processor } from 'bullmq';

/** What an injected fault throws: an ordinary (retryable) error, so BullMQ retries the job. */
export class InjectedFaultError extends Error {
  readonly code = 'FLOTILLA_INJECTED_FAULT';
  constructor() {
    super('injected fault (FAULT_INJECT_FAIL_RATIO): this attempt fails on purpose');
    this.name = 'InjectedFaultError';
  }
}

/**
 * Fails a share of job attempts before they run (FAULT_INJECT_FAIL_RATIO), for rollout drills and
 * chaos tests: an image built with it is a canary that must be rolled back. The attempt throws, so the
 * job goes back to its queue with BullMQ's backoff (maybe to a healthy replica) and nothing is lost.
 * At 0 (the default) the processor is returned as it is.
 */
export function withFaultInjection<T, R>(
  processor: Processor<T, R>,
  ratio: number,
  random: () => number = Math.random,
): Processor<T, R> {
  if (ratio <= 0) return processor;
  return (job: Job<T, R>, token?: string) => {
    if (random() < ratio) return Promise.reject(new InjectedFaultError());
    return processor(job, token);
  };
}
