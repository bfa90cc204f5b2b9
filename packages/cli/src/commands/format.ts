/** Shared text shapes of the operator commands' tables. */

/** A duration a person reads at a glance: 850ms, 4.2s, 3m 20s, 2h 5m. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** `2026-12-02 14:05:03` from an ISO time: the date a log line shows, without the zone noise. */
export const when = (iso: string | null | undefined) => (iso ? iso.slice(0, 19).replace('T', ' ') : '-');

/** Cut to `max` characters with an ellipsis, on one line (runs of whitespace become one space). */
export const cut = (s: string, max: number) => fit(s.replace(/\s+/g, ' ').trim(), max);

/** A table line cut to the terminal's width, its padding kept, so one row stays one line. */
export const fit = (line: string, max: number) =>
  line.length <= max ? line : `${line.slice(0, Math.max(0, max - 1))}…`;

/**
 * Columns padded to their widest cell. Colour is applied after padding (by `paint`), so escape
 * codes never count as width.
 */
export function table(
  header: string[],
  rows: string[][],
  paint: (cell: string, row: number, col: number) => string = (c) => c,
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], row: number) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0);
        return row < 0 ? padded : paint(padded, row, i);
      })
      .join('  ')
      .trimEnd();
  return [line(header, -1), ...rows.map((r, i) => line(r, i))];
}
