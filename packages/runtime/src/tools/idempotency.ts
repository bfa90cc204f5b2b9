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
 * - a result `{ state: 'done', tool, argsHash, outcome }`, written after the tool ran to completion
 *   and kept for the idempotency TTL (default a day). Every later call with the key and the same
 *   tool and arguments replays it without running the tool; one with other arguments is a conflict
 *   (a caller reused an explicit key for a different write), never a replay of someone else's result.
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
  z.object({ state: z.literal('done'), tool: z.string(), argsHash: z.string(), outcome: StoredOutcome }),
]);

/** What a write is: the record of one must not be replayed for another. */
export interface WriteIdentity {
  tool: string;
  /** argsHash of the validated arguments. */
  argsHash: string;
}

export type Acquired =
  | { kind: 'owner'; release: () => Promise<void>; complete: (outcome: StoredOutcome) => Promise<void> }
  | { kind: 'done'; outcome: StoredOutcome }
  /** The key holds the result of a different write. */
  | { kind: 'conflict'; stored: WriteIdentity };

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
  write: WriteIdentity,
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
          const record = { state: 'done', tool: write.tool, argsHash: write.argsHash, outcome };
          await redis.set(redisKey, JSON.stringify(record), 'EX', resultTtlSec);
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
    const record = parsed.data;
    if (record.state === 'done') {
      return record.tool === write.tool && record.argsHash === write.argsHash
        ? { kind: 'done', outcome: record.outcome }
        : { kind: 'conflict', stored: { tool: record.tool, argsHash: record.argsHash } };
    }
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
