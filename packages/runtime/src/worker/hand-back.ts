import type { Job, Processor } from 'bullmq';

/** How long before the drain deadline running jobs are handed back: enough for one round trip to Redis. */
export const HAND_BACK_MARGIN_MS = 1000;

interface Held {
  job: Job;
  token: string;
}

/**
 * The jobs this replica is running, so a drain that runs out of grace can hand them back to the queue
 * (BullMQ's `job.moveToWait(token)`, which frees the lock without counting an attempt or a stall) rather
 * than leave them locked until the lock expires. Another replica then takes each one at once; the run
 * that was cut counts in the ledger as a start without a finish, and its writes replay from their
 * idempotency records.
 */
export class RunningJobs {
  readonly #held = new Map<string, Held>();

  /** Wraps a processor so every job it runs is known until it returns or throws. */
  track<T, R>(processor: Processor<T, R>): Processor<T, R> {
    return async (job, token) => {
      const id = job.id;
      if (id !== undefined && token !== undefined) this.#held.set(id, { job: job as Job, token });
      try {
        return await processor(job, token);
      } finally {
        if (id !== undefined) this.#held.delete(id);
      }
    };
  }

  get size(): number {
    return this.#held.size;
  }

  /**
   * Moves every job still running back to wait. Returns the ids handed back and those Redis refused
   * (their lock then expires as after a crash: delivery stays at least once either way).
   */
  async handBack(): Promise<{ handedBack: string[]; failed: string[] }> {
    const held = [...this.#held.entries()];
    this.#held.clear();
    const results = await Promise.allSettled(held.map(([, { job, token }]) => job.moveToWait(token)));
    const handedBack: string[] = [];
    const failed: string[] = [];
    results.forEach((r, i) => {
      const id = held[i]?.[0] as string;
      (r.status === 'fulfilled' ? handedBack : failed).push(id);
    });
    return { handedBack, failed };
  }
}

/** Resolves true when `promise` settles within `ms`, false otherwise (the promise keeps running). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
