/** JSON Schema helpers for structured output; vendors are stricter than JSON Schema itself. */

type Schema = Record<string, unknown>;

/**
 * Both vendors want an object at the root of a structured-output schema (OpenAI json_schema,
 * Anthropic tool input_schema). Anything else is wrapped as `{ value }` and unwrapped on return.
 */
export function objectRoot(schema: Schema): { schema: Schema; wrapped: boolean } {
  const { $schema: _drop, ...rest } = schema;
  if (rest.type === 'object') return { schema: rest, wrapped: false };
  return {
    schema: { type: 'object', properties: { value: rest }, required: ['value'], additionalProperties: false },
    wrapped: true,
  };
}

/**
 * OpenAI's strict mode rejects (HTTP 400) schemas where an object has optional properties or
 * open additionalProperties. Strict is only asked for when the schema already meets those rules,
 * so a zod schema with `.optional()` still gets best-effort JSON mode instead of a hard failure.
 */
export function isStrictCompatible(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.every(isStrictCompatible);
  if (!schema || typeof schema !== 'object') return true;
  const s = schema as Schema;
  if (s.type === 'object' || s.properties) {
    const props = Object.keys((s.properties as Schema | undefined) ?? {});
    const required = new Set((s.required as string[] | undefined) ?? []);
    if (s.additionalProperties !== false) return false;
    if (!props.every((p) => required.has(p))) return false;
  }
  return Object.entries(s).every(([k, v]) => k === 'const' || k === 'enum' || k === 'default' || isStrictCompatible(v));
}
