import { z } from 'zod';

export interface TextOptions {
  /** Fewest code points. Default 0. */
  min?: number;
  /** Most code points. */
  max: number;
  /** Must match somewhere (JSON Schema `pattern`, unanchored), checked before trimming. */
  pattern?: { regex: RegExp; message: string };
  /** Strip leading and trailing whitespace after validation (what is stored and hashed). */
  trim?: boolean;
  /** Values refused outright (JSON Schema `not: { enum }`). */
  forbidden?: readonly string[];
}

const codePoints = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/**
 * A caller's string whose JSON Schema means exactly what the validator enforces, so a document
 * generated from it (OpenAPI) never allows what the API then rejects:
 * - Lengths count code points, as JSON Schema's minLength/maxLength do; zod's own `.max()` counts
 *   UTF-16 units and would reject 5000 emoji that `maxLength: 8000` allows.
 * - Lone surrogates (`"\ud800"` is valid JSON, not valid Unicode; I-JSON, RFC 7493, forbids
 *   them) are accepted and replaced by U+FFFD, as WebIDL's USVString conversion and
 *   TextEncoder do. Refusing them would need a `pattern` JSON Schema tools don't agree on
 *   (ECMA-262 without the u flag would also refuse valid pairs; Rust's regex can't name a
 *   surrogate), and what is stored, hashed and echoed is then always well-formed.
 */
export function text(options: TextOptions) {
  const { min = 0, max, pattern, trim = false, forbidden = [] } = options;
  // abort: one problem per field (an empty goal is "too short", not also "blank").
  let schema = z
    .string()
    .overwrite((s) => s.toWellFormed())
    .refine((s) => codePoints(s) <= max, { message: `must be at most ${max} characters`, abort: true })
    .refine((s) => codePoints(s) >= min, {
      message: `must be at least ${min} character${min === 1 ? '' : 's'}`,
      abort: true,
    });
  if (pattern) schema = schema.regex(pattern.regex, { message: pattern.message, abort: true });
  if (forbidden.length)
    schema = schema.refine((s) => !forbidden.includes(s), {
      message: `must not be ${forbidden.join(' or ')}`,
      abort: true,
    });
  if (trim) schema = schema.trim();
  // Last: zod keeps metadata per schema instance, and each method above returns a new one.
  return schema.meta({
    ...(min > 0 ? { minLength: min } : {}),
    maxLength: max,
    ...(forbidden.length ? { not: { enum: [...forbidden] } } : {}),
  });
}

/**
 * Holds a character that String.prototype.trim keeps (ECMA-262 WhiteSpace and LineTerminator are
 * what it strips). Spelled out rather than `\S`, which means something else in Python and Rust,
 * where contract testers evaluate this pattern.
 */
export const NON_BLANK = /[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;
