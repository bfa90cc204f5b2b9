import { z } from 'zod';

/**
 * How a setting is secret: its whole value ('value': API keys, tokens), or only the
 * credentials inside a URL ('url-credentials': REDIS_URL, whose host and port operators need
 * to see in logs but whose password they must not).
 */
export type SecretKind = 'value' | 'url-credentials';

// A private registry rather than `.meta()`: the mark must not leak into JSON Schemas the
// services publish, and registering keeps the caller's schema instance instead of cloning it.
const secrets = z.registry<{ kind: SecretKind }>();

/**
 * Marks a config setting as secret: its value is never echoed in config errors and is
 * registered with the logger's redactor once loaded. Mark the innermost schema or wrap a
 * finished one (`secret(z.string().min(20)).optional()`): methods that clone a schema
 * (`.min()`, `.regex()`) return an unmarked copy.
 */
export function secret<T extends z.ZodType>(schema: T): T {
  secrets.add(schema, { kind: 'value' });
  return schema;
}

/** Marks a URL setting whose password (and only that) is secret, such as `redis://:pw@host:6379`. */
export function secretUrl<T extends z.ZodType>(schema: T): T {
  secrets.add(schema, { kind: 'url-credentials' });
  return schema;
}

/** The secret kind of a schema, looking through optional/default/pipe/... wrappers. */
export function secretKind(schema: z.core.$ZodType): SecretKind | undefined {
  const seen = new Set<z.core.$ZodType>();
  const visit = (s: z.core.$ZodType | undefined): SecretKind | undefined => {
    if (!s || seen.has(s)) return undefined;
    seen.add(s);
    const own = secrets.get(s);
    if (own) return own.kind;
    const def = s._zod.def as { innerType?: z.core.$ZodType; in?: z.core.$ZodType; out?: z.core.$ZodType };
    return visit(def.innerType) ?? visit(def.in) ?? visit(def.out);
  };
  return visit(schema);
}

/** The parts of a loaded secret that must never be printed. */
export function secretParts(kind: SecretKind, value: string): string[] {
  if (kind === 'value') return [value];
  try {
    const url = new URL(value);
    return url.password ? [url.password, decodeURIComponent(url.password)] : [];
  } catch {
    return [value]; // not a URL after all: hide all of it
  }
}
