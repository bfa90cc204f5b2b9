import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { StopReason } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/**
 * Exactly-once-on-success for write tools, across job retries and replicas.
 *
 * The key `redisKeys(prefix).toolIdempotency(key)` holds one of:
 * - a claim `{ state: 'claimed', token }`, set with SET NX and a TTL (the claim TTL) by the caller about
 *   to run the tool. Others wait for it to resolve. The TTL is longer than the call can possibly run
 *   (every attempt's timeout plus backoff), so a live claimant never loses its claim, and a crashed
 *   one blocks others only until it expires.
 * - a result `{ state: 'done', outcome }`, written after the tool ran to completion and kept for the
 *   idempotency TTL (default a day). Every later call with the key replays it without running the tool.
 *
 * A failed call deletes its own claim (compare-and-delete on the token), so a retry may try again:
 * a write is never repeated after it succeeded, but one that failed or timed out may run again with
 * the same key, which tools pass to the far side (ctx.idempotencyKey) so it can dedupe too.
 */

/** The part of a finished call worth replaying. */
const StoredOutcome = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), output: z.unknown() }),
  z.object({ ok: z.literal(false), stopReason: StopReason, code: z.string(), message: z.string() }),
]);
export type StoredOutcome = z.infer<typeof StoredOutcome>;

const IdempotencyRecord = z.discriminatedUnion('state', [
  z.object({ state: z.literal('claimed'), token: z.string() }),
  z.object({ state: z.literal('done'), outcome: StoredOutcome }),
]);

export type Acquired =
  | { kind: 'owner'; release: () => Promise<void>; complete: (outcome: StoredOutcome) => Promise<void> }
  | { kind: 'done'; outcome: StoredOutcome };

// Deletes the key only while it still holds our claim, so a late failure cannot erase someone else's.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** How often a caller waiting on another's claim looks again. Waits only happen on concurrent duplicates. */
const POLL_MS = 50;

/**
 * Claims `redisKey` or returns the stored outcome, waiting while another caller holds the claim.
 * Rejects with the signal's reason if it aborts while waiting, and with Redis's error if Redis fails.
 */
export async function acquire(
  redis: Redis,
  redisKey: string,
  { claimTtlMs, resultTtlSec, signal }: { claimTtlMs: number; resultTtlSec: number; signal: AbortSignal },
): Promise<Acquired> {
  for (;;) {
    signal.throwIfAborted();
    const claim = JSON.stringify({ state: 'claimed', token: randomUUID() });
    if ((await redis.set(redisKey, claim, 'PX', Math.ceil(claimTtlMs), 'NX')) === 'OK') {
      return {
        kind: 'owner',
        release: async () => {
          await redis.eval(RELEASE, 1, redisKey, claim);
        },
        complete: async (outcome) => {
          await redis.set(redisKey, JSON.stringify({ state: 'done', outcome }), 'EX', resultTtlSec);
        },
      };
    }
    const raw = await redis.get(redisKey);
    if (raw === null) continue; // released or expired between our SET and GET: try to claim again
    const parsed = IdempotencyRecord.safeParse(safeJson(raw));
    if (!parsed.success) {
      return {
        kind: 'done',
        outcome: {
          ok: false,
          stopReason: 'tool_error',
          code: 'idempotency_corrupt',
          message: `unreadable record at ${redisKey}`,
        },
      };
    }
    if (parsed.data.state === 'done') return { kind: 'done', outcome: parsed.data.outcome };
    await sleep(POLL_MS, undefined, { signal });
  }
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
