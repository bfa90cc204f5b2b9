import type { VersionFigures } from '@flotilla/contracts';
import { describe, expect, it } from 'vitest';
import { canaryReplicas, DEFAULT_THRESHOLDS, decide, type Figures, parseDuration, sideFigures } from './decide.js';

const t = { ...DEFAULT_THRESHOLDS, minJobs: 20 };
const side = (jobs: number, errors: number, p95: number | null, versions = ['v']): Figures => ({
  versions,
  jobs,
  errors,
  errorRate: jobs ? errors / jobs : 0,
  p95,
});

describe('decide', () => {
  it('promotes a canary within both thresholds, stating its figures', () => {
    const d = decide(side(40, 1, 120), side(120, 0, 100), t);
    expect(d.verdict).toBe('promote');
    expect(d.reason).toBe(
      'promoted: canary error rate 0.03 <= 0.05 (stable 0.00), p95 120ms vs 100ms (1.20x <= 1.5x), 40 canary jobs, 120 stable jobs',
    );
  });

  it('rolls back a canary above the error rate, with its figures and the threshold', () => {
    const d = decide(side(42, 13, 100), side(130, 0, 100), t);
    expect(d.verdict).toBe('rollback');
    expect(d.reason).toBe('rolled back: canary error rate 0.31 > 0.05 (stable 0.00), 42 canary jobs, 130 stable jobs');
  });

  it('holds the error rate as a bound, not a comparison: stable with zero errors changes nothing', () => {
    // Exactly at the threshold passes; just above fails, whatever stable's rate.
    expect(decide(side(20, 1, 10), side(20, 0, 10), t).verdict).toBe('promote');
    expect(decide(side(40, 3, 10), side(20, 0, 10), t).verdict).toBe('rollback');
    // A sick stable does not excuse the canary.
    expect(decide(side(40, 12, 10), side(40, 12, 10), t).verdict).toBe('rollback');
  });

  it('rolls back a canary slower than stable by more than the p95 ratio', () => {
    const d = decide(side(30, 0, 160), side(30, 0, 100), t);
    expect(d.verdict).toBe('rollback');
    expect(d.p95Ratio).toBeCloseTo(1.6);
    expect(d.reason).toMatch(/^rolled back: canary p95 160ms is 1\.60x stable's 100ms > 1\.5x/);
    // At the ratio itself it passes.
    expect(decide(side(30, 0, 150), side(30, 0, 100), t).verdict).toBe('promote');
  });

  it('keeps the ratio finite when stable answers in under a millisecond', () => {
    const d = decide(side(30, 0, 1), side(30, 0, 0), t);
    expect(d.p95Ratio).toBe(1);
    expect(d.verdict).toBe('promote');
  });

  it('refuses to decide on too few jobs on either side, and says which', () => {
    const few = decide(side(5, 5, 10), side(100, 0, 10), t);
    // Even an all-errors canary: five attempts are not evidence (they roll back all the same).
    expect(few.verdict).toBe('insufficient');
    expect(few.reason).toBe(
      'no decision: too few jobs in the window (canary 5; need 20 each): rolled back, stable keeps serving',
    );
    expect(decide(side(25, 0, 10), side(3, 0, 10), t).reason).toMatch(/\(stable 3; need 20 each\)/);
    expect(decide(side(0, 0, null), side(0, 0, null), t).reason).toMatch(/\(canary 0, stable 0;/);
  });
});

describe('sideFigures', () => {
  const v = (version: string, jobs: number, errors: number, p95: number | null): VersionFigures => ({
    version,
    jobs,
    errors,
    errorRate: jobs ? errors / jobs : 0,
    p50: p95,
    p95,
    replicas: [],
  });

  it('sums a side over its versions and ignores the others', () => {
    const all = [v('1.0', 10, 1, 100), v('1.1', 30, 0, 300), v('2.0', 5, 5, 10)];
    expect(sideFigures(all, ['1.0', '1.1'])).toEqual({
      versions: ['1.0', '1.1'],
      jobs: 40,
      errors: 1,
      errorRate: 1 / 40,
      p95: 300,
    });
    expect(sideFigures(all, ['3.0'])).toEqual({ versions: ['3.0'], jobs: 0, errors: 0, errorRate: 0, p95: null });
  });
});

describe('canaryReplicas', () => {
  it('rounds a percentage of the stable replicas up, never to zero', () => {
    expect(canaryReplicas('10%', 3)).toBe(1);
    expect(canaryReplicas('10%', 10)).toBe(1);
    expect(canaryReplicas('10%', 11)).toBe(2);
    expect(canaryReplicas('50%', 3)).toBe(2);
    expect(canaryReplicas('33.3%', 3)).toBe(1);
    expect(canaryReplicas('100%', 4)).toBe(4);
    expect(canaryReplicas('1%', 1)).toBe(1);
  });

  it('takes a count as it is, and refuses anything else naming the flag', () => {
    expect(canaryReplicas('2', 10)).toBe(2);
    expect(() => canaryReplicas('0', 3)).toThrow(/--canary 0/);
    expect(() => canaryReplicas('0%', 3)).toThrow(/--canary 0%: a percentage must be above 0%/);
    expect(() => canaryReplicas('150%', 3)).toThrow(/at most 100%/);
    expect(() => canaryReplicas('ten', 3)).toThrow(/--canary ten: expected/);
  });
});

describe('parseDuration', () => {
  it('reads Compose-style durations and bare seconds', () => {
    expect(parseDuration('window', '60s')).toBe(60_000);
    expect(parseDuration('window', '1m30s')).toBe(90_000);
    expect(parseDuration('window', '500ms')).toBe(500);
    expect(parseDuration('window', '15')).toBe(15_000);
    expect(() => parseDuration('window', 'soon')).toThrow(/--window soon: expected a duration/);
    expect(() => parseDuration('window', '0s')).toThrow(/must be longer than 0/);
  });
});
