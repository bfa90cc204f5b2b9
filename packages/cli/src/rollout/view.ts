import type { Style } from '../style.js';
import type { Figures, Thresholds } from './decide.js';

/** What the live view shows at one moment of the window. */
export interface Snapshot {
  service: string;
  image: string;
  stable: Figures & { replicas: number };
  canary: Figures & { replicas: number };
  windowMs: number;
  elapsedMs: number;
  thresholds: Thresholds;
}

const rate = (r: number) => r.toFixed(2);
const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v)}ms`);

/** `[#####.....]`: how much of the window has passed. */
export function bar(fraction: number, width = 24): string {
  const done = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(done)}${'.'.repeat(width - done)}]`;
}

/** The terminal's picture: per version its replicas, jobs, errors, error rate and p95, and the window's progress. */
export function renderSnapshot(s: Snapshot, style: Style): string[] {
  const left = Math.max(0, Math.ceil((s.windowMs - s.elapsedMs) / 1000));
  const t = s.thresholds;
  const row = (label: string, f: Figures & { replicas: number }, bad: boolean) =>
    [
      label.padEnd(8),
      (f.versions.join(',') || '-').slice(0, 22).padEnd(23),
      String(f.replicas).padStart(8),
      String(f.jobs).padStart(6),
      String(f.errors).padStart(7),
      (bad ? style.red : (x: string) => x)(rate(f.errorRate).padStart(6)),
      ms(f.p95).padStart(8),
    ].join(' ');
  return [
    `${style.bold(`rollout ${s.service}`)} -> ${s.image}  ${bar(s.elapsedMs / s.windowMs)} ${left}s left`,
    style.dim(
      `${'side'.padEnd(8)} ${'version'.padEnd(23)} ${'replicas'.padStart(8)} ${'jobs'.padStart(6)} ${'errors'.padStart(7)} ${'rate'.padStart(6)} ${'p95'.padStart(8)}`,
    ),
    row('stable', s.stable, false),
    row('canary', s.canary, s.canary.jobs > 0 && s.canary.errorRate > t.maxErrorRate),
    style.dim(
      `thresholds: canary error rate <= ${rate(t.maxErrorRate)}, p95 <= ${t.maxP95Ratio}x stable's, at least ${t.minJobs} jobs each`,
    ),
  ];
}

/** The pipe's picture: one plain line per update. */
export function snapshotLine(s: Snapshot): string {
  const side = (f: Figures) => `${f.jobs} jobs ${f.errors} errors rate ${rate(f.errorRate)} p95 ${ms(f.p95)}`;
  return `window ${Math.floor(s.elapsedMs / 1000)}/${Math.round(s.windowMs / 1000)}s: canary ${side(s.canary)} | stable ${side(s.stable)}`;
}
