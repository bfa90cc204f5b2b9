import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { ConfigProblem } from '../config/errors.js';
import type { Logger } from '../logger/index.js';
import { type ApiKeyEntry, type ApiKeyRing, ApiKeysFileError, parseApiKeys } from './api-keys.js';

/**
 * Reads and parses a keys file.
 * @throws ApiKeysFileError naming what is wrong (never a line's text)
 */
export function readApiKeysFile(path: string): ApiKeyEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ApiKeysFileError(`cannot read ${path} (${code})`, { cause: err });
  }
  return parseApiKeys(text);
}

/** What is wrong with the keys file at `path`, as config problems naming `variable` (exit 78 at start). */
export function apiKeysFileProblems(path: string, variable = 'API_KEYS_FILE'): ConfigProblem[] {
  try {
    readApiKeysFile(path);
    return [];
  } catch (err) {
    if (!(err instanceof ApiKeysFileError)) throw err;
    const message = err.message.startsWith('cannot read') ? err.message : `${path} ${err.message}`;
    return [{ variable, message }];
  }
}

export interface WatchApiKeysOptions {
  /** How often the file's stat is compared. Default 2000 ms: a revoked key stops working within about that. */
  intervalMs?: number;
  log: Pick<Logger, 'info' | 'warn'>;
}

/**
 * Reloads `ring` whenever the file changes, so `pnpm keys add/revoke` takes effect without a
 * restart. Polling stat (fs.watchFile) rather than inotify: a Compose secret is a bind mount of one
 * file, where inotify events are unreliable, while the file's size and mtime are always current. A
 * file that becomes unusable (emptied, half-written, a typo) keeps the keys loaded before, with a
 * warning, instead of locking every client out or letting a broken line in; the next good version
 * is picked up.
 */
export function watchApiKeysFile(path: string, ring: ApiKeyRing, options: WatchApiKeysOptions): { close(): void } {
  const listener = () => {
    try {
      const entries = readApiKeysFile(path);
      ring.replace(entries);
      options.log.info({ keys: entries.length }, 'API keys reloaded');
    } catch (err) {
      options.log.warn(
        { err: { message: (err as Error).message }, keys: ring.size },
        'API keys file unusable; keeping the keys loaded before',
      );
    }
  };
  // persistent: false, so the watcher never holds the process open during shutdown.
  watchFile(path, { interval: options.intervalMs ?? 2000, persistent: false }, listener);
  return { close: () => unwatchFile(path, listener) };
}
