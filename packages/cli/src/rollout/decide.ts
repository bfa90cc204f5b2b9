import type { VersionFigures } from '@flotilla/contracts';

/** What a rollout holds the canary to. */
export interface Thresholds {
  /** The canary fails above this share of errored attempts (absolute, not relative to stable). */
  maxErrorRate: number;
  /** The canary fails when its p95 exceeds stable's p95 times this. */
  maxP95Ratio: number;
  /** Attempts each version needs in the window before a decision is made on them. */
  minJobs: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { maxErrorRate: 0.05, maxP95Ratio: 1.5, minJobs: 20 };

/**
 * promote: the canary held; rollback: it failed a threshold; insufficient: too few attempts to tell,
 * which rolls back too (stable keeps serving) but is not the canary's fault.
 */
export type Verdict = 'promote' | 'rollback' | 'insufficient';

/** The figures a decision was made on, and why: what `--json` prints and the decision line states. */
export interface Decision {
  verdict: Verdict;
  /** One line: the verdict with its figures and thresholds. */
  reason: string;
  canary: Figures;
  stable: Figures;
  thresholds: Thresholds;
  /** canary p95 / stable p95; null when either has no attempts. */
  p95Ratio: number | null;
}

/** One side's figures over the window (a side may span versions: stable replicas of older images). */
export interface Figures {
  versions: string[];
  jobs: number;
  errors: number;
  errorRate: number;
  p95: number | null;
}

const EMPTY: Figures = { versions: [], jobs: 0, errors: 0, errorRate: 0, p95: null };

/**
 * Sums one side's versions. Its p95 is the largest of theirs: an upper bound, as the versions' samples
 * are not kept; with one stable version (the usual case) it is exact.
 */
export function sideFigures(all: readonly VersionFigures[], versions: readonly string[]): Figures {
  const mine = all.filter((v) => versions.includes(v.version));
  if (mine.length === 0) return { ...EMPTY, versions: [...versions] };
  const jobs = mine.reduce((n, v) => n + v.jobs, 0);
  const errors = mine.reduce((n, v) => n + v.errors, 0);
  const p95s = mine.flatMap((v) => (v.p95 === null ? [] : [v.p95]));
  return {
    versions: [...versions],
    jobs,
    errors,
    errorRate: jobs ? errors / jobs : 0,
    p95: p95s.length ? Math.max(...p95s) : null,
  };
}

const rate = (r: number) => r.toFixed(2);
const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v)}ms`);

/**
 * The rollout's decision on the window's figures. In order: too few attempts on either side (the
 * stable side is the p95 baseline) is `insufficient`; a canary error rate above the threshold, then a
 * p95 above stable's times the ratio, is `rollback`; else `promote`. Stable's own error rate is shown
 * but does not excuse the canary: a canary that errs as often as a sick stable is not promoted.
 * A stable p95 of 0 ms (a sub-millisecond role) is taken as 1 ms so the ratio stays finite.
 */
export function decide(canary: Figures, stable: Figures, t: Thresholds): Decision {
  const p95Ratio = canary.p95 !== null && stable.p95 !== null ? canary.p95 / Math.max(stable.p95, 1) : null;
  const base = { canary, stable, thresholds: t, p95Ratio };
  const counts = `${canary.jobs} canary jobs, ${stable.jobs} stable jobs`;
  if (canary.jobs < t.minJobs || stable.jobs < t.minJobs) {
    const short = [
      canary.jobs < t.minJobs ? `canary ${canary.jobs}` : '',
      stable.jobs < t.minJobs ? `stable ${stable.jobs}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    return {
      ...base,
      verdict: 'insufficient',
      reason: `no decision: too few jobs in the window (${short}; need ${t.minJobs} each): rolled back, stable keeps serving`,
    };
  }
  if (canary.errorRate > t.maxErrorRate) {
    return {
      ...base,
      verdict: 'rollback',
      reason: `rolled back: canary error rate ${rate(canary.errorRate)} > ${rate(t.maxErrorRate)} (stable ${rate(stable.errorRate)}), ${counts}`,
    };
  }
  if (p95Ratio !== null && p95Ratio > t.maxP95Ratio) {
    return {
      ...base,
      verdict: 'rollback',
      reason: `rolled back: canary p95 ${ms(canary.p95)} is ${p95Ratio.toFixed(2)}x stable's ${ms(stable.p95)} > ${t.maxP95Ratio}x, ${counts}`,
    };
  }
  return {
    ...base,
    verdict: 'promote',
    reason: `promoted: canary error rate ${rate(canary.errorRate)} <= ${rate(t.maxErrorRate)} (stable ${rate(stable.errorRate)}), p95 ${ms(canary.p95)} vs ${ms(stable.p95)} (${p95Ratio === null ? '-' : p95Ratio.toFixed(2)}x <= ${t.maxP95Ratio}x), ${counts}`,
  };
}

/**
 * `--canary`: a share of the stable replicas (`10%`, rounded up: a canary of 0 replicas tests
 * nothing) or a count (`2`). Throws a message naming the flag.
 */
export function canaryReplicas(spec: string, stableReplicas: number): number {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(spec.trim());
  if (pct) {
    const p = Number(pct[1]);
    if (!(p > 0 && p <= 100)) throw new Error(`--canary ${spec}: a percentage must be above 0% and at most 100%`);
    return Math.max(1, Math.ceil((stableReplicas * p) / 100 - 1e-9));
  }
  if (/^\d+$/.test(spec.trim()) && Number(spec) >= 1) return Number(spec);
  throw new Error(`--canary ${spec}: expected a percentage of the stable replicas (10%) or a replica count (2)`);
}

/** `--window`: `60s`, `2m`, `1m30s`, `500ms`, or bare seconds. Throws a message naming the flag. */
export function parseDuration(flag: string, spec: string): number {
  const s = spec.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = s;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new Error(`--${flag} ${spec}: expected a duration such as 60s, 2m or 1m30s`);
    total += Number(m[1]) * (units[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  if (!(total > 0)) throw new Error(`--${flag} ${spec}: must be longer than 0`);
  return total;
}

/** A number flag within [min, max]. Throws a message naming the flag. */
export function parseNumber(flag: string, spec: string, min: number, max = Number.POSITIVE_INFINITY): number {
  const n = Number(spec);
  if (spec.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new Error(
      `--${flag} ${spec}: expected a number from ${min}${max === Number.POSITIVE_INFINITY ? ' up' : ` to ${max}`}`,
    );
  return n;
}
