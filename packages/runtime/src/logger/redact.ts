/**
 * Secret scrubbing shared by the logger and by anything else that writes text a human or a
 * machine may read later (error strings stored in Redis, vendor messages). Two layers:
 * values we know (registered by config for every `secret()` setting) and shapes we recognise
 * (vendor API keys, HTTP credentials, passwords inside URLs).
 */

/** What every scrubbed value or secret-named field becomes. */
export const REDACTED = '[REDACTED]';

/**
 * Values shorter than this are not registered: replacing every "abc" or "1234" in every log
 * line would mangle unrelated text and still not protect a secret that weak.
 */
const MIN_SECRET_LENGTH = 6;

const registered = new Set<string>();
let registeredPattern: RegExp | undefined;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Adds an exact value to the set scrubbed from every log line and every `redactText` result,
 * in the forms it takes on the way out: raw, JSON-escaped (log lines are JSON) and
 * URL-encoded (secrets end up in query strings). Config registers every secret it loads;
 * call this for secrets obtained some other way (a token fetched at runtime).
 */
export function registerSecretValue(value: string | null | undefined): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return;
  const before = registered.size;
  for (const form of [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]) registered.add(form);
  if (registered.size === before) return;
  // Longest first, so a secret that contains another is replaced whole.
  const alternatives = [...registered].sort((a, b) => b.length - a.length).map(escapeRegExp);
  registeredPattern = new RegExp(alternatives.join('|'), 'g');
}

/** Forgets every registered value. For tests only: a service never un-learns a secret. */
export function clearSecretValues(): void {
  registered.clear();
  registeredPattern = undefined;
}

// `Basic <b64>` is only a credential if it decodes to "user:password"; otherwise it is prose
// ("Basic configuration") and stays.
function basicCredentials(match: string, word: string, b64: string): string {
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  return decoded.includes(':') ? `${word} ${REDACTED}` : match;
}

type Replacer = string | ((match: string, ...groups: string[]) => string);

/**
 * Shapes of credentials, recognised wherever they appear. Character classes stop at `"` and
 * `\` so that, applied to a serialized JSON line, a match never runs past its string.
 */
const PATTERNS: ReadonlyArray<readonly [RegExp, Replacer]> = [
  // scheme://user:password@host (redis://, postgres://, https://): keep the user, hide the password.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/"\\]*:)[^\s@/"\\]+@/gi, `$1${REDACTED}@`],
  // HTTP credentials in headers, curl lines and error messages.
  [/\b(Bearer)\s+[A-Za-z0-9\-._~+/]+=*/gi, `$1 ${REDACTED}`],
  [/\b(Basic)\s+([A-Za-z0-9+/]{6,}={0,2})/gi, basicCredentials],
  // Vendor keys: OpenAI / Anthropic (sk-, sk-proj-, sk-ant-), AWS access key ids, GitHub, Slack, Google.
  [/\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}/g, REDACTED],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, REDACTED],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/g, REDACTED],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/g, REDACTED],
  [/\bxox[abposr]-[A-Za-z0-9-]{10,}/g, REDACTED],
  [/\bAIza[0-9A-Za-z_-]{35}/g, REDACTED],
  // JSON Web Tokens (header.payload.signature, both first parts start with '{"').
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, REDACTED],
];

/** Replaces every registered secret value and every credential-shaped substring of `text`. */
export function redactText(text: string): string {
  let out = text;
  // Exact values first, so a shape pattern cannot cut a registered secret in half.
  if (registeredPattern) out = out.replace(registeredPattern, REDACTED);
  for (const [pattern, replacement] of PATTERNS) {
    // Two calls because String.replace's overloads don't accept the union.
    out = typeof replacement === 'string' ? out.replace(pattern, replacement) : out.replace(pattern, replacement);
  }
  return out;
}

/** Field names whose values are secret whatever they contain, at any depth. */
const SECRET_KEY =
  /^(?:password|passwd|pwd|pass|secret|client_?secret|token|access_?token|refresh_?token|id_?token|api_?key|apikey|x-api-key|authorization|proxy-authorization|cookie|set-cookie|private_?key|credentials?)$/i;

/** True for a field name that always holds a secret ("password", "apiKey", "authorization", ...). */
export const isSecretKey = (key: string): boolean => SECRET_KEY.test(key);

/** How deep `redactValue` walks before it stops copying. */
const MAX_DEPTH = 10;

/**
 * A JSON-ready copy of `value` with secrets removed: strings scrubbed by `redactText`,
 * secret-named fields replaced, Errors turned into `{ type, message, stack, cause,
 * aggregateErrors, ...fields }` (JSON.stringify would print `{}`), `toJSON` honoured,
 * cycles cut and depth bounded.
 */
export function redactValue(value: unknown): unknown {
  return walk(value, 0, new Set());
}

function walk(value: unknown, depth: number, ancestors: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
      return redactText(value);
    case 'object':
      break;
    case 'function':
    case 'symbol':
      return undefined;
    default:
      return value; // number, boolean, bigint, undefined
  }
  if (value === null) return null;
  if (ancestors.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  ancestors.add(value);
  try {
    if (value instanceof Error) return errorToObject(value, depth, ancestors);
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      let json: unknown;
      try {
        json = toJSON.call(value);
      } catch {
        return '[toJSON threw]';
      }
      return json === value ? copyFields(value, depth, ancestors) : walk(json, depth + 1, ancestors);
    }
    if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1, ancestors));
    return copyFields(value, depth, ancestors);
  } finally {
    ancestors.delete(value);
  }
}

function copyFields(value: object, depth: number, ancestors: Set<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    out[key] = isSecretKey(key) && field !== undefined && field !== null ? REDACTED : walk(field, depth + 1, ancestors);
  }
  return out;
}

// Same shape as pino's errWithCause serializer, so logs look the same whichever path an Error took.
function errorToObject(err: Error, depth: number, ancestors: Set<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: err.constructor?.name ?? err.name,
    message: redactText(String(err.message)),
    stack: typeof err.stack === 'string' ? redactText(err.stack) : undefined,
  };
  const errors: unknown = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors)) out.aggregateErrors = walk(errors, depth + 1, ancestors);
  if (err.cause !== undefined) out.cause = walk(err.cause, depth + 1, ancestors);
  for (const [key, field] of Object.entries(err)) {
    if (key in out || (key === 'errors' && 'aggregateErrors' in out)) continue;
    out[key] = isSecretKey(key) && field !== undefined && field !== null ? REDACTED : walk(field, depth + 1, ancestors);
  }
  return out;
}
