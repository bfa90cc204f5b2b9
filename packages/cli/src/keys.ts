import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TenantId } from '@flotilla/contracts';
import {
  type ApiKeyScope,
  ApiKeysFileError,
  apiKeyNames,
  formatApiKeyLine,
  generateApiKey,
  parseApiKeys,
  withoutApiKey,
} from '@flotilla/runtime/auth';
import { repoRoot } from './scaffold.js';

const HEADER = `# flotilla API keys: one client per line, "<name> <scope> sha256:<SHA-256 of the key, hex>".
# The name is the client's tenant; scope is tasks (its own tasks) or admin (the operator's endpoints).
# Only hashes live here, never a key: edit with \`pnpm keys add <name> [--admin]\` / \`pnpm keys revoke <name>\`.
`;

/** The file `pnpm keys` edits: API_KEYS_FILE, else the Compose secret (compose/secrets/api_keys). */
export function defaultKeysFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.API_KEYS_FILE || join(repoRoot, 'compose', 'secrets', 'api_keys');
}

/** A refusal to edit the keys file; the message says what to do instead. */
export class KeysCommandError extends Error {}

const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');

/**
 * Writes the file in place rather than by rename: Compose mounts a secret as a bind mount of that
 * one file, and a renamed replacement would be a new inode the running container never sees. The
 * text is checked first, so the file is never left in a state the services refuse. 0644 because the
 * services run as uid 65532 and the file holds only hashes of 256-bit keys, which reveal nothing.
 */
function write(file: string, text: string): void {
  try {
    parseApiKeys(text);
  } catch (err) {
    if (err instanceof ApiKeysFileError) throw new KeysCommandError(`${file} would be unusable: ${err.message}`);
    throw err;
  }
  writeFileSync(file, text, { mode: 0o644 });
}

/** Adds a client and returns its new key, which exists nowhere else: print it once. */
export function addKey(file: string, name: string, scope: ApiKeyScope): string {
  if (!TenantId.safeParse(name).success)
    throw new KeysCommandError(`invalid name ${JSON.stringify(name.slice(0, 80))}: use 1-64 letters, digits, . _ or -`);
  const text = read(file);
  if (apiKeyNames(text).some((k) => k.name === name))
    throw new KeysCommandError(`${name} already has a key; revoke it first to replace it (its tasks stay its own)`);
  const key = generateApiKey();
  const base = text === '' ? HEADER : text.endsWith('\n') ? text : `${text}\n`;
  write(file, `${base}${formatApiKeyLine(name, scope, key)}\n`);
  return key;
}

/** Removes a client's key; requests with it get 401 once the services reload the file (API_KEYS_RELOAD_MS). */
export function revokeKey(file: string, name: string): void {
  const { text, removed } = withoutApiKey(read(file), name);
  if (!removed) throw new KeysCommandError(`${file} has no key named ${JSON.stringify(name.slice(0, 80))}`);
  // An empty keys file is a config error, and services keep their last usable keys rather than load
  // it: revoking the last key would appear to work and change nothing.
  if (apiKeyNames(text).length === 0)
    throw new KeysCommandError(`${name} holds the last key; add another key first (or stop the services)`);
  write(file, text);
}

/** The clients in the file, `name scope` each. */
export function listKeys(file: string): { name: string; scope: string }[] {
  return apiKeyNames(read(file));
}
