import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readOutFiles } from './out-files.js';

// Archives made by the real tar, as the run's wrapper makes them.
const dir = mkdtempSync(join(tmpdir(), 'flotilla-out-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const longName = `${'d'.repeat(60)}/${'f'.repeat(80)}.txt`;
mkdirSync(join(dir, 'sub'));
mkdirSync(join(dir, 'd'.repeat(60)));
writeFileSync(join(dir, 'a.txt'), 'alpha');
writeFileSync(join(dir, 'sub', 'b.txt'), 'beta');
writeFileSync(join(dir, longName), 'long');
writeFileSync(join(dir, 'big.bin'), 'z'.repeat(3000));
symlinkSync('/etc/passwd', join(dir, 'link'));
const tar = (format: string) => execFileSync('tar', ['-C', dir, `--format=${format}`, '-cf', '-', '.']);

describe('readOutFiles', () => {
  it.each(['gnu', 'ustar', 'posix'])(
    'reads regular files of a %s archive, long names too, and skips links',
    (format) => {
      const out = readOutFiles(tar(format), 1_000_000, false);
      expect(out?.files).toEqual({
        'a.txt': 'alpha',
        'sub/b.txt': 'beta',
        [longName]: 'long',
        'big.bin': 'z'.repeat(3000),
      });
      expect(out?.truncated).toBe(false);
    },
  );

  it('keeps files within the cap and flags the rest', () => {
    const out = readOutFiles(tar('gnu'), 100, false);
    expect(out?.files).toEqual({ 'a.txt': 'alpha', 'sub/b.txt': 'beta', [longName]: 'long' });
    expect(out?.truncated).toBe(true);
  });

  it('keeps what came before a cut or malformed archive, and flags it', () => {
    const whole = tar('ustar');
    const cut = readOutFiles(whole.subarray(0, 1100), 1_000_000, true);
    expect(cut?.truncated).toBe(true);
    const garbage = readOutFiles(Buffer.concat([Buffer.alloc(512, 'A'), whole]), 1_000_000, false);
    expect(garbage).toEqual({ files: {}, truncated: true });
  });

  it('returns nothing when there was no out/ directory', () => {
    expect(readOutFiles(Buffer.alloc(0), 100, false)).toBeUndefined();
  });
});
