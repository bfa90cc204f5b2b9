/** ANSI styling that is switched off as a whole: off when piped, under NO_COLOR, and for --json. */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

const sgr = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;

export const COLOR: Style = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

const same = (s: string) => s;
export const PLAIN: Style = { bold: same, dim: same, red: same, green: same, yellow: same, cyan: same };

/** Colour only on a terminal, and never when NO_COLOR is set to anything but the empty string (no-color.org). */
export function styleFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Style {
  return stream.isTTY && !env.NO_COLOR ? COLOR : PLAIN;
}

/** The length a terminal shows: escape sequences take no columns. */
export const visibleLength = (s: string) => s.replace(ANSI, '').length;

// biome-ignore lint/suspicious/noControlCharactersInRegex: the escape character is what it matches.
export const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
