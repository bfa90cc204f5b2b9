import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TenantId } from '@flotilla/contracts';
import { FlotillaError } from '../errors.js';

/**
 * What a key may do. `tasks`: submit, read and cancel its own tenant's tasks. `admin`: the
 * operator's endpoints (roles, queues), and nothing of any tenant's tasks: the two never mix, so a
 * leaked task key cannot reach the operator's controls and an operator key cannot be used to act
 * as a tenant.
 */
export const API_KEY_SCOPES = ['tasks', 'admin'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/** One line of a keys file: a client (its name is its tenant), its scope and its key's hash. */
export interface ApiKeyEntry {
  name: string;
  scope: ApiKeyScope;
  /** The SHA-256 of the key, 32 bytes. */
  hash: Buffer;
}

/**
 * A keys file cannot be used: it is empty, a line is malformed, a name repeats, or it is still the
 * committed example. Messages name line numbers and names, never a line's text.
 */
export class ApiKeysFileError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOTILLA_API_KEYS_FILE', message, options);
  }
}

const HASH_PREFIX = 'sha256:';
/** The placeholder in compose/secrets/api_keys.example: no key hashes to it, and a file holding it was never edited. */
const EXAMPLE_HASH = `${HASH_PREFIX}${'0'.repeat(64)}`;
/**
 * The orchestrator's tenant when auth is off (AUTH=off on loopback) and of tasks from before keys:
 * no key may take it, or its holder would see those tasks.
 */
const RESERVED_NAME = 'default';
const LINE = /^(\S+)\s+(\S+)\s+(sha256:[0-9a-f]{64})$/;

/**
 * The hash a keys file stores, `sha256:<hex>`. A fast, unsalted hash is the right tool here, not
 * bcrypt/scrypt/argon2: those are slow to make guessing a *low-entropy password* from its hash
 * expensive, but an API key is 256 random bits (generateApiKey), which no amount of hashing speed
 * lets anyone guess; a slow hash would only cost CPU on every request and hand an attacker a cheap
 * way to burn it. This is the scheme GitHub and Stripe describe for their tokens.
 */
export function hashApiKey(key: string): string {
  return `${HASH_PREFIX}${createHash('sha256').update(key).digest('hex')}`;
}

/** A new API key: 32 random bytes (256 bits), base64url, with a prefix that makes a leaked one easy to spot (secret scanners). */
export function generateApiKey(): string {
  return `flk_${randomBytes(32).toString('base64url')}`;
}

/**
 * Parses a keys file: one client per line, `<name> <scope> sha256:<hex>`; blank lines and lines
 * starting with `#` are ignored. A file with no key, a malformed line, a repeated name or the
 * example's placeholder is an error (failing closed: a typo must not silently leave a client out or
 * in).
 * @throws ApiKeysFileError
 */
export function parseApiKeys(text: string): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  const problems: string[] = [];
  const names = new Set<string>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = `line ${i + 1}`;
    const m = LINE.exec(line);
    if (!m) {
      problems.push(`${at}: expected "<name> <scope> sha256:<64 hex digits>"`);
      continue;
    }
    const [, name = '', scope = '', hash = ''] = m;
    if (!TenantId.safeParse(name).success) {
      problems.push(`${at}: the name must be 1-64 letters, digits, . _ or -, starting with a letter or digit`);
      continue;
    }
    if (name === RESERVED_NAME) {
      problems.push(`${at}: the name ${RESERVED_NAME} is reserved (the tenant of tasks made without keys)`);
      continue;
    }
    if (!(API_KEY_SCOPES as readonly string[]).includes(scope)) {
      problems.push(`${at}: scope must be one of ${API_KEY_SCOPES.join(', ')}`);
      continue;
    }
    if (hash === EXAMPLE_HASH) {
      problems.push(`${at}: is the example entry (api_keys.example); add real keys with \`pnpm keys add <name>\``);
      continue;
    }
    if (names.has(name)) {
      problems.push(`${at}: the name ${name} is already used by an earlier line`);
      continue;
    }
    names.add(name);
    entries.push({ name, scope: scope as ApiKeyScope, hash: Buffer.from(hash.slice(HASH_PREFIX.length), 'hex') });
  }
  if (problems.length) throw new ApiKeysFileError(problems.join('; '));
  if (entries.length === 0) throw new ApiKeysFileError('holds no keys; add one with `pnpm keys add <name>`');
  return entries;
}

/** The line for one key, as parseApiKeys reads it. */
export function formatApiKeyLine(name: string, scope: ApiKeyScope, key: string): string {
  return `${name} ${scope} ${hashApiKey(key)}`;
}

/** The names a keys file's text holds (comments and malformed lines skipped), in order. */
export function apiKeyNames(text: string): { name: string; scope: string }[] {
  return text
    .split(/\r?\n/)
    .map((line) => LINE.exec(line.trim()))
    .flatMap((m) => (m?.[1] && m[2] ? [{ name: m[1], scope: m[2] }] : []));
}

/** The file's text without the line for `name`; comments and every other line are kept as they were. */
export function withoutApiKey(text: string, name: string): { text: string; removed: boolean } {
  const lines = text.split('\n');
  const kept = lines.filter((line) => LINE.exec(line.trim())?.[1] !== name);
  return { text: kept.join('\n'), removed: kept.length !== lines.length };
}

/**
 * The keys a service accepts, swappable as a whole when the file changes (see watchApiKeysFile).
 * Lookups compare the presented key's hash with every entry in constant time and never stop early,
 * so how long a check takes says nothing about which entry, or how much of one, matched.
 */
export class ApiKeyRing {
  private entries: readonly ApiKeyEntry[];

  constructor(entries: readonly ApiKeyEntry[]) {
    this.entries = entries;
  }

  get size(): number {
    return this.entries.length;
  }

  replace(entries: readonly ApiKeyEntry[]): void {
    this.entries = entries;
  }

  /** The entry the key belongs to, else undefined. */
  find(presented: string): ApiKeyEntry | undefined {
    const digest = createHash('sha256').update(presented).digest();
    let found: ApiKeyEntry | undefined;
    for (const entry of this.entries) if (timingSafeEqual(digest, entry.hash) && !found) found = entry;
    return found;
  }
}
