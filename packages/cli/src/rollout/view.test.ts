import { describe, expect, it } from 'vitest';
import { COLOR, PLAIN, visibleLength } from '../style.js';
import { DEFAULT_THRESHOLDS } from './decide.js';
import { bar, renderSnapshot, type Snapshot, snapshotLine } from './view.js';

const snap: Snapshot = {
  service: 'researcher',
  image: 'flotilla/researcher:1.4.0',
  stable: { versions: ['1.3.0'], jobs: 130, errors: 0, errorRate: 0, p95: 110, replicas: 3 },
  canary: { versions: ['1.4.0'], jobs: 42, errors: 13, errorRate: 13 / 42, p95: 90.4, replicas: 1 },
  windowMs: 60_000,
  elapsedMs: 45_500,
  thresholds: DEFAULT_THRESHOLDS,
};

describe('the rollout view', () => {
  it('shows per side its version, replicas, jobs, errors, rate and p95, with the time left', () => {
    const lines = renderSnapshot(snap, PLAIN);
    expect(lines[0]).toBe(`rollout researcher -> flotilla/researcher:1.4.0  ${bar(45_500 / 60_000)} 15s left`);
    expect(lines[2]?.split(/\s+/)).toEqual(['stable', '1.3.0', '3', '130', '0', '0.00', '110ms']);
    expect(lines[3]?.split(/\s+/)).toEqual(['canary', '1.4.0', '1', '42', '13', '0.31', '90ms']);
    expect(lines[4]).toBe("thresholds: canary error rate <= 0.05, p95 <= 1.5x stable's, at least 20 jobs each");
  });

  it('marks a canary error rate over the threshold in red on a terminal, and keeps the columns', () => {
    const [, , stable, canary] = renderSnapshot(snap, COLOR);
    expect(canary).toContain('\x1b[31m  0.31\x1b[39m');
    expect(stable).not.toContain('\x1b[31m');
    expect(visibleLength(canary as string)).toBe(visibleLength(stable as string));
  });

  it('fills the bar with the window', () => {
    expect(bar(0, 4)).toBe('[....]');
    expect(bar(0.5, 4)).toBe('[##..]');
    expect(bar(2, 4)).toBe('[####]');
  });

  it('says the same in one plain line for a pipe', () => {
    expect(snapshotLine(snap)).toBe(
      'window 45/60s: canary 42 jobs 13 errors rate 0.31 p95 90ms | stable 130 jobs 0 errors rate 0.00 p95 110ms',
    );
  });
});
