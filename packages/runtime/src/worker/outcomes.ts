import { type AttemptEnd, isFaultEnd, redisKeys, type VersionFigures } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { OUTCOMES_MAX_LEN } from './run-book.js';

/** The value at quantile q of ascending `sorted` (nearest rank); null when empty. */
const quantile = (sorted: readonly number[], q: number): number | null =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null) : null;

/**
 * Per image version, how a role's job attempts ended since `sinceMs` (epoch ms), from the role's
 * outcomes stream (written by RunBook): attempts, errors (isFaultEnd), error rate, p50/p95 time and
 * the replicas seen. Sorted by version. The stream is capped (OUTCOMES_MAX_LEN), so a window older
 * than the cap's reach counts only its newest attempts.
 */
export async function readVersionFigures(
  redis: Redis,
  prefix: string,
  role: string,
  sinceMs: number,
): Promise<VersionFigures[]> {
  const entries = await redis.xrange(
    redisKeys(prefix).roleOutcomes(role),
    String(Math.max(0, Math.floor(sinceMs))),
    '+',
    'COUNT',
    OUTCOMES_MAX_LEN,
  );
  const byVersion = new Map<string, { ms: number[]; errors: number; replicas: Set<string> }>();
  for (const [, fields] of entries) {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
    const version = f.v ?? 'unknown';
    let v = byVersion.get(version);
    if (!v) {
      v = { ms: [], errors: 0, replicas: new Set() };
      byVersion.set(version, v);
    }
    v.ms.push(Number(f.ms) || 0);
    if (isFaultEnd((f.end ?? 'failed') as AttemptEnd)) v.errors += 1;
    if (f.r) v.replicas.add(f.r);
  }
  return [...byVersion.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([version, v]) => {
      const sorted = v.ms.sort((a, b) => a - b);
      return {
        version,
        jobs: sorted.length,
        errors: v.errors,
        errorRate: sorted.length ? v.errors / sorted.length : 0,
        p50: quantile(sorted, 0.5),
        p95: quantile(sorted, 0.95),
        replicas: [...v.replicas].sort(),
      };
    });
}
