/**
 * A small, deterministic JSON Schema instance generator for the offline model: given a schema and
 * a piece of text, it builds a value that fits the schema, using the text where a string is wanted.
 * It covers the JSON Schema that `z.toJSONSchema` emits (type, const, enum, default, anyOf/oneOf/allOf,
 * local $ref, string/number/array bounds), not every corner of the spec.
 */

type Schema = Record<string, unknown>;

/** Returned when a required value cannot be filled honestly (a `url` with no URL in the text). */
export const MISSING: unique symbol = Symbol('missing');
type Filled = unknown | typeof MISSING;

export interface InstanceSeed {
  /** Text strings are taken from. */
  text: string;
  /**
   * When true, fields that need facts the text does not have (a URL) are MISSING instead of made up:
   * the offline model then skips that tool rather than calling it with an invented address.
   */
  strict?: boolean;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'`)\]]+/gi;
/** Optional properties worth filling: they carry the request's own words. */
const TEXT_KEYS = new Set([
  'query',
  'question',
  'text',
  'task',
  'goal',
  'prompt',
  'input',
  'topic',
  'content',
  'message',
]);
const URL_KEYS = /^(url|uri|href|link)$|url$/i;
const MAX_DEPTH = 12;

/** URLs in the text, trailing punctuation trimmed, in order of appearance. */
function findUrls(text: string): string[] {
  return [...text.matchAll(URL_RE)].map((m) => m[0].replace(/[.,;:!?]+$/, ''));
}

/** The task a program should print: the first non-empty line, without a "Task:" label. */
function taskOf(text: string): string {
  const line = text.split('\n').find((l) => l.trim()) ?? text;
  return line
    .replace(/^\s*task\s*:\s*/i, '')
    .trim()
    .slice(0, 200);
}

/** A tiny program that prints its task, in the requested language. */
function tinyProgram(task: string, language: string): string {
  const literal = JSON.stringify(task);
  switch (language.toLowerCase()) {
    case 'python':
    case 'py':
      return `print(${literal})\n`;
    case 'bash':
    case 'sh':
    case 'shell':
      return `echo '${task.replace(/'/g, `'\\''`)}'\n`;
    default:
      return `console.log(${literal});\n`;
  }
}

function pointer(root: Schema, ref: string): Schema | undefined {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown> | undefined)?.[key];
  }
  return node && typeof node === 'object' ? (node as Schema) : undefined;
}

interface Ctx {
  seed: InstanceSeed;
  root: Schema;
  urls: string[];
  /** Language chosen for a sibling `language` field, so `code` is written in it. */
  language: string;
}

/** Builds an instance of `schema` from `seed`; MISSING when strict and a required fact is absent. */
export function instanceOf(schema: Schema, seed: InstanceSeed): unknown {
  return fill(schema, { seed, root: schema, urls: findUrls(seed.text), language: 'javascript' }, undefined, 0);
}

function fill(schema: Schema, ctx: Ctx, key: string | undefined, depth: number): Filled {
  if (depth > MAX_DEPTH) return null;
  if (typeof schema.$ref === 'string') {
    const target = pointer(ctx.root, schema.$ref);
    return target ? fill(target, ctx, key, depth + 1) : null;
  }
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) {
    if (key === 'language' && schema.enum.includes('javascript')) return 'javascript';
    return schema.enum[0];
  }
  if ('default' in schema && schema.default !== undefined) return schema.default;
  const branches = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (Array.isArray(branches)) {
    // Prefer a non-null branch: `nullable` fields should still carry content.
    const ordered = [...branches].sort((a, b) => Number(a.type === 'null') - Number(b.type === 'null'));
    for (const b of ordered) {
      const v = fill(b, ctx, key, depth + 1);
      if (v !== MISSING) return v;
    }
    return MISSING;
  }
  if (Array.isArray(schema.allOf)) return fill(mergeAll(schema.allOf as Schema[]), ctx, key, depth + 1);

  const types = Array.isArray(schema.type) ? (schema.type as string[]) : schema.type ? [schema.type as string] : [];
  const type =
    types.find((t) => t !== 'null') ?? types[0] ?? (schema.properties ? 'object' : schema.items ? 'array' : 'string');
  switch (type) {
    case 'object':
      return fillObject(schema, ctx, depth);
    case 'array':
      return fillArray(schema, ctx, key, depth);
    case 'integer':
    case 'number':
      return fillNumber(schema, type === 'integer');
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return fillString(schema, ctx, key);
  }
}

function mergeAll(parts: Schema[]): Schema {
  const merged: Schema = { type: 'object', properties: {}, required: [] };
  for (const p of parts) {
    Object.assign(merged.properties as Schema, (p.properties as Schema | undefined) ?? {});
    (merged.required as string[]).push(...((p.required as string[] | undefined) ?? []));
    if (p.type && p.type !== 'object') return p;
  }
  return merged;
}

function fillObject(schema: Schema, ctx: Ctx, depth: number): Filled {
  const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
  const required = new Set((schema.required as string[] | undefined) ?? []);
  // `language` first, so a sibling `code` is written in the language chosen.
  const keys = Object.keys(props).sort((a, b) => Number(b === 'language') - Number(a === 'language'));
  const values: Record<string, unknown> = {};
  const inner = { ...ctx };
  for (const k of keys) {
    const prop = props[k] ?? {};
    const wanted =
      required.has(k) ||
      'default' in prop ||
      TEXT_KEYS.has(k) ||
      (URL_KEYS.test(k) && ctx.urls.length > 0) ||
      (k === 'code' && required.has('code'));
    if (!wanted) continue;
    const v = fill(prop, inner, k, depth + 1);
    if (v === MISSING) {
      if (required.has(k)) return MISSING;
      continue;
    }
    if (k === 'language' && typeof v === 'string') inner.language = v;
    values[k] = v;
  }
  // Keep the schema's own key order in the output.
  return Object.fromEntries(
    Object.keys(props)
      .filter((k) => k in values)
      .map((k) => [k, values[k]]),
  );
}

function fillArray(schema: Schema, ctx: Ctx, key: string | undefined, depth: number): Filled {
  const min = typeof schema.minItems === 'number' ? schema.minItems : 1;
  const max = typeof schema.maxItems === 'number' ? schema.maxItems : Number.POSITIVE_INFINITY;
  const count = Math.min(Math.max(min, 1), max);
  const prefix = Array.isArray(schema.prefixItems) ? (schema.prefixItems as Schema[]) : [];
  const items = (schema.items && typeof schema.items === 'object' ? schema.items : {}) as Schema;
  const out: unknown[] = [];
  for (let i = 0; i < Math.max(count, prefix.length); i++) {
    const v = fill(prefix[i] ?? items, ctx, key, depth + 1);
    if (v === MISSING) return min === 0 ? [] : MISSING;
    out.push(v);
  }
  return out;
}

function fillNumber(schema: Schema, integer: boolean): number {
  const step = integer ? 1 : 0.5;
  let n = 0;
  if (typeof schema.minimum === 'number') n = schema.minimum;
  else if (typeof schema.exclusiveMinimum === 'number') n = schema.exclusiveMinimum + step;
  if (typeof schema.maximum === 'number') n = Math.min(n, schema.maximum);
  else if (typeof schema.exclusiveMaximum === 'number' && n >= schema.exclusiveMaximum)
    n = schema.exclusiveMaximum - step;
  return integer ? Math.ceil(n) : n;
}

function fillString(schema: Schema, ctx: Ctx, key: string | undefined): Filled {
  const format = typeof schema.format === 'string' ? schema.format : undefined;
  let s: string;
  if (format === 'uri' || format === 'url' || (key !== undefined && URL_KEYS.test(key))) {
    const url = ctx.urls[0];
    if (!url) {
      if (ctx.seed.strict) return MISSING;
      s = 'https://example.com/';
    } else s = url;
  } else if (format === 'email') s = 'demo@example.com';
  else if (format === 'date-time') s = '2000-01-01T00:00:00.000Z';
  else if (format === 'date') s = '2000-01-01';
  else if (format === 'uuid') s = '00000000-0000-4000-8000-000000000000';
  else if (key === 'code') s = tinyProgram(taskOf(ctx.seed.text), ctx.language);
  else if (key === 'language') s = ctx.language;
  else s = ctx.seed.text.trim() || 'n/a';
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : Number.POSITIVE_INFINITY;
  if (s.length > max) s = s.slice(0, max);
  if (s.length < min) s = s.padEnd(min, '.');
  return s;
}
