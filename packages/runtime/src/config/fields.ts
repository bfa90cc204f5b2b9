import { z } from 'zod';

/**
 * Builders for settings read from environment strings, each failing with a message an
 * operator can act on ("expected a positive integer") instead of zod's type jargon. Chain
 * `.default(x)` (in the output type) or `.optional()` onto them.
 */
export const envField = {
  /** 1, 2, 3, ... */
  positiveInt: () =>
    z
      .string()
      .trim()
      .regex(/^\+?\d+$/, 'expected a positive integer')
      .transform(Number)
      .refine((n) => n > 0 && Number.isSafeInteger(n), 'expected a positive integer'),
  /** 0, 1, 2, ... */
  nonNegativeInt: () =>
    z
      .string()
      .trim()
      .regex(/^\+?\d+$/, 'expected a whole number (0 or more)')
      .transform(Number)
      .refine(Number.isSafeInteger, 'expected a whole number (0 or more)'),
  /** Any number above zero, fractions allowed (seconds). */
  positiveNumber: () =>
    z
      .string()
      .trim()
      .regex(/^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i, 'expected a positive number')
      .transform(Number)
      .refine((n) => n > 0 && Number.isFinite(n), 'expected a positive number'),
  /** A share between 0 and 1 inclusive (sampling rates). */
  fraction: () =>
    z
      .string()
      .trim()
      .regex(/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i, 'expected a number from 0 to 1')
      .transform(Number)
      .refine((n) => n >= 0 && n <= 1, 'expected a number from 0 to 1'),
  /** A TCP port; 0 asks the OS for a free one (tests). */
  port: () =>
    z
      .string()
      .trim()
      .regex(/^\d+$/, 'expected a port number (0-65535)')
      .transform(Number)
      .refine((n) => n >= 0 && n <= 65535, 'expected a port number (0-65535)'),
  /** true/false, 1/0, yes/no, on/off (any case). */
  boolean: () =>
    z
      .string()
      .trim()
      .toLowerCase()
      .refine((s) => /^(true|false|1|0|yes|no|on|off)$/.test(s), 'expected true or false')
      .transform((s) => /^(true|1|yes|on)$/.test(s)),
  /** Comma-separated list; blanks around items and empty items are dropped. */
  list: () =>
    z.string().transform((s) =>
      s
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean),
    ),
  /** An absolute URL, optionally restricted to some schemes (`['http', 'https']`). */
  url: (schemes?: readonly string[]) =>
    z
      .string()
      .trim()
      .refine(
        (s) => {
          if (!URL.canParse(s)) return false;
          return !schemes || schemes.includes(new URL(s).protocol.slice(0, -1));
        },
        schemes ? `expected a ${schemes.map((s) => `${s}://`).join(' or ')} URL` : 'expected an absolute URL',
      ),
};
