import { afterEach, describe, expect, it } from 'vitest';
import { clearSecretValues, REDACTED, redactText, redactValue, registerSecretValue } from './redact.js';
import { shouldSampleToolResult, toolResultForLog } from './tool-result.js';

describe('redactText', () => {
  afterEach(() => clearSecretValues());

  it.each([
    ['redis://default:s3cr3t-pass@redis:6379/0', `redis://default:${REDACTED}@redis:6379/0`],
    ['rediss://:onlypass@host', `rediss://:${REDACTED}@host`],
    ['Authorization: Bearer abc.def-ghi', `Authorization: Bearer ${REDACTED}`],
    [`Basic ${Buffer.from('user:pw').toString('base64')}`, `Basic ${REDACTED}`],
    ['key sk-proj-abcdefghijklmnopqrstuvwx done', `key ${REDACTED} done`],
    ['AKIAABCDEFGHIJKLMNOP', REDACTED],
    ['ghp_abcdefghijklmnopqrstuvwxyz012345', REDACTED],
    ['xoxb-1234567890-abcdefghij', REDACTED],
  ])('hides credentials in %s', (input, expected) => {
    expect(redactText(input)).toBe(expected);
  });

  it.each([
    'Basic configuration loaded',
    'redis://redis:6379',
    'https://example.com/a:b@c',
    'max_tokens reached after 25 steps',
  ])('leaves ordinary text alone: %s', (input) => {
    expect(redactText(input)).toBe(input);
  });

  it('hides registered values in raw, JSON-escaped and URL-encoded form, longest first', () => {
    registerSecretValue('pa"ss word/1');
    registerSecretValue('pa"ss word/1-and-more');
    registerSecretValue('short'); // below MIN_SECRET_LENGTH: not registered, would mangle prose
    expect(redactText('a pa"ss word/1-and-more b')).toBe(`a ${REDACTED} b`);
    expect(redactText(JSON.stringify({ v: 'pa"ss word/1' }))).toBe(`{"v":"${REDACTED}"}`);
    expect(redactText(`?t=${encodeURIComponent('pa"ss word/1')}`)).toBe(`?t=${REDACTED}`);
    expect(redactText('a short text')).toBe('a short text');
  });

  it('is idempotent', () => {
    const once = redactText('Bearer abc redis://u:p@h sk-ant-abcdefghijklmnopqrstu');
    expect(redactText(once)).toBe(once);
  });
});

describe('redactValue', () => {
  it('cuts cycles and keeps shared (non-cyclic) references', () => {
    const shared = { n: 1 };
    const cyclic: Record<string, unknown> = { a: shared, b: shared };
    cyclic.self = cyclic;
    expect(redactValue(cyclic)).toEqual({ a: { n: 1 }, b: { n: 1 }, self: '[Circular]' });
  });

  it('bounds depth', () => {
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expect(JSON.stringify(redactValue(deep))).toContain('[Truncated]');
  });
});

describe('tool result sampling', () => {
  it('samples by rate with an injected random source', () => {
    expect(shouldSampleToolResult(0.01, () => 0.005)).toBe(true);
    expect(shouldSampleToolResult(0.01, () => 0.5)).toBe(false);
    expect(shouldSampleToolResult(0, () => 0)).toBe(false);
    expect(shouldSampleToolResult(1, () => 0.999)).toBe(true);
  });

  it('never logs a whole large result, and redacts the sample', () => {
    const entry = toolResultForLog({ body: `x${'y'.repeat(1000)}`, auth: 'Bearer tok-123' }, { rate: 1, maxChars: 50 });
    expect(entry.sample).toHaveLength(50);
    expect(entry.truncated).toBe(true);
    const small = toolResultForLog({ auth: 'Bearer tok-123' }, { rate: 1 });
    expect(small.sample).toBe(`{"auth":"Bearer ${REDACTED}"}`);
  });
});
