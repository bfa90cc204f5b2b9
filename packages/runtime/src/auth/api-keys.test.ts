import { describe, expect, it } from 'vitest';
import { ApiKeyRing, formatApiKeyLine, generateApiKey, hashApiKey, parseApiKeys, withoutApiKey } from './api-keys.js';

const errorOf = (text: string) => {
  try {
    parseApiKeys(text);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
};

describe('keys files', () => {
  it('parses name, scope and hash per line, skipping comments and blank lines', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    const text = `# comment\n\n${formatApiKeyLine('alice', 'tasks', a)}\n  ${formatApiKeyLine('ops', 'admin', b)}  \n`;
    const ring = new ApiKeyRing(parseApiKeys(text));
    expect(ring.find(a)).toMatchObject({ name: 'alice', scope: 'tasks' });
    expect(ring.find(b)).toMatchObject({ name: 'ops', scope: 'admin' });
    expect(ring.find(`${a}x`)).toBeUndefined();
    // The file holds the hash, never the key.
    expect(text).not.toContain(a);
    expect(text).toContain(hashApiKey(a));
  });

  it('refuses an empty file, a malformed line, a bad scope or name, a repeated or reserved name and the example', () => {
    expect(errorOf('')).toMatch(/holds no keys/);
    expect(errorOf('# only comments\n')).toMatch(/holds no keys/);
    const line = formatApiKeyLine('alice', 'tasks', generateApiKey());
    expect(errorOf(`${line}\nbob tasks not-a-hash`)).toMatch(/^line 2: expected/);
    expect(errorOf(line.replace('tasks', 'root'))).toMatch(/line 1: scope must be one of tasks, admin/);
    expect(errorOf(line.replace('alice', 'a:b'))).toMatch(/line 1: the name must be/);
    expect(errorOf(`${line}\n${line}`)).toMatch(/line 2: the name alice is already used/);
    expect(errorOf(line.replace('alice', 'default'))).toMatch(/line 1: the name default is reserved/);
    expect(errorOf(`example tasks sha256:${'0'.repeat(64)}`)).toMatch(/line 1: is the example entry/);
  });

  it('never puts a line of the file in its messages', () => {
    const secretish = `alice tasks sha256:${'a'.repeat(63)}`;
    expect(errorOf(secretish)).not.toContain('a'.repeat(63));
  });

  it('drops one client and keeps every other line as it was', () => {
    const a = formatApiKeyLine('alice', 'tasks', generateApiKey());
    const b = formatApiKeyLine('bob', 'tasks', generateApiKey());
    const { text, removed } = withoutApiKey(`# header\n${a}\n${b}\n`, 'alice');
    expect(removed).toBe(true);
    expect(text).toBe(`# header\n${b}\n`);
    expect(withoutApiKey(text, 'carol').removed).toBe(false);
  });

  it('makes keys of 256 random bits, each different', () => {
    const keys = new Set(Array.from({ length: 100 }, generateApiKey));
    expect(keys.size).toBe(100);
    for (const k of keys) expect(Buffer.from(k.slice(4), 'base64url')).toHaveLength(32);
  });

  it('swaps its keys as a whole (a reload)', () => {
    const a = generateApiKey();
    const ring = new ApiKeyRing(parseApiKeys(formatApiKeyLine('alice', 'tasks', a)));
    ring.replace(parseApiKeys(formatApiKeyLine('bob', 'tasks', generateApiKey())));
    expect(ring.find(a)).toBeUndefined();
    expect(ring.size).toBe(1);
  });
});
