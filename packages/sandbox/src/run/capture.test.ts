import { describe, expect, it } from 'vitest';
import { CappedOutput } from './capture.js';

describe('CappedOutput', () => {
  it('keeps the first bytes up to the cap, flags the overflow and remembers the tail', () => {
    const out = new CappedOutput(5, 4);
    expect(out.push(Buffer.from('abc'))).toBe(true);
    expect(out.push(Buffer.from('defgh'))).toBe(false);
    expect(out.text()).toBe('abcde');
    expect(out.truncated).toBe(true);
    expect(out.tail()).toBe('efgh');
  });

  it('does not flag output that exactly fills the cap', () => {
    const out = new CappedOutput(3);
    expect(out.push(Buffer.from('abc'))).toBe(true);
    expect(out.truncated).toBe(false);
  });
});
