import { createHash } from 'node:crypto';
import { configure } from 'safe-stable-stringify';

// Sorted keys make the hash independent of property order; circular values and BigInts must not
// make auditing throw, since the args come from a model.
const canonical = configure({ deterministic: true, circularValue: '[Circular]', bigint: true });

/** sha256 (hex) of the canonical JSON of a tool's raw arguments: lets auditors match calls without storing args. */
export function argsHash(args: unknown): string {
  return createHash('sha256')
    .update(canonical(args) ?? 'undefined')
    .digest('hex');
}
