import { ExponentialBackoff } from 'cockatiel';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { isTransientError } from '../errors.js';
import { argsHash, defineTool, fullJitter, parseKillSwitch, type ToolContext, ToolTimeoutError } from './index.js';

describe('defineTool', () => {
  it('types run input from the schema output and fills defaults', () => {
    const tool = defineTool({
      name: 'demo.echo',
      description: 'echo',
      input: z.object({ text: z.string(), times: z.number().default(1) }),
      sideEffects: 'read',
      run: async (input, ctx) => {
        expectTypeOf(input).toEqualTypeOf<{ text: string; times: number }>();
        expectTypeOf(ctx).toEqualTypeOf<ToolContext>();
        return { echoed: input.text.repeat(input.times) };
      },
    });
    expect(tool).toMatchObject({ name: 'demo.echo', timeoutMs: 10_000, retries: 2, sideEffects: 'read' });
    expect(Object.isFrozen(tool)).toBe(true);
  });

  it('rejects malformed definitions at definition time', () => {
    const base = { description: 'x', input: z.object({}), sideEffects: 'read' as const, run: async () => 1 };
    expect(() => defineTool({ ...base, name: 'has space' })).toThrow(TypeError);
    expect(() => defineTool({ ...base, name: 'ok', retries: -1 })).toThrow(/retries/);
    expect(() => defineTool({ ...base, name: 'ok', timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});

describe('fullJitter', () => {
  const options = { initialDelay: 100, maxDelay: 1000, exponent: 2, generator: fullJitter() };

  it('draws each delay uniformly from [0, min(maxDelay, initialDelay * 2^attempt)]', () => {
    const draws = [0, 0.5, 0.999, 0.25, 0.999, 0.999];
    let i = 0;
    const generator = fullJitter(() => draws[i++] ?? 0);
    const delays: number[] = [];
    let state: number | undefined;
    for (let k = 0; k < draws.length; k++) {
      const [delay, next] = generator(state, { ...options, generator });
      delays.push(delay);
      state = next;
    }
    // caps: 100, 200, 400, 800, 1000 (capped), 1000
    expect(delays).toEqual([0, 100, 399, 200, 999, 999]);
  });

  it('plugs into cockatiel ExponentialBackoff and stays within the caps with the real random source', () => {
    // The factory's next() is the first retry's delay (attempt 0); each next() after it is one attempt later.
    let backoff = new ExponentialBackoff({ ...options, generator: fullJitter() }).next();
    const delays: number[] = [];
    for (let attempt = 0; attempt < 50; attempt++, backoff = backoff.next(undefined)) {
      delays.push(backoff.duration);
      expect(backoff.duration).toBeGreaterThanOrEqual(0);
      expect(backoff.duration).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** attempt));
    }
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});

describe('isTransientError', () => {
  it('retries network errors (also wrapped by fetch), timeouts and errors flagged retryable', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(isTransientError(reset)).toBe(true);
    expect(isTransientError(new TypeError('fetch failed', { cause: reset }))).toBe(true);
    expect(isTransientError(new ToolTimeoutError('t', 10))).toBe(true);
    expect(isTransientError(Object.assign(new Error('503'), { retryable: true }))).toBe(true);
    // ioredis gave up on a command while reconnecting: the job is worth another delivery.
    expect(isTransientError(Object.assign(new Error('reconnecting'), { name: 'MaxRetriesPerRequestError' }))).toBe(
      true,
    );
  });

  it('does not retry other errors, and an explicit retryable: false wins', () => {
    expect(isTransientError(new Error('bad request'))).toBe(false);
    expect(isTransientError('string')).toBe(false);
    const refused = Object.assign(new Error('policy'), {
      retryable: false,
      cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }),
    });
    expect(isTransientError(refused)).toBe(false);
  });
});

describe('parseKillSwitch', () => {
  it('reads the KILL_SWITCH env format', () => {
    expect(parseKillSwitch(undefined)).toEqual({ global: false, noWrites: false, tools: [] });
    expect(parseKillSwitch('all')).toEqual({ global: true, noWrites: false, tools: [] });
    expect(parseKillSwitch('writes')).toEqual({ global: false, noWrites: true, tools: [] });
    expect(parseKillSwitch(' http.get , code.* ,')).toEqual({
      global: false,
      noWrites: false,
      tools: ['http.get', 'code.*'],
    });
  });
});

describe('argsHash', () => {
  it('is a sha256 of canonical JSON: key order does not matter, values do', () => {
    const a = argsHash({ url: 'https://x', opts: { a: 1, b: [1, 2] } });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(argsHash({ opts: { b: [1, 2], a: 1 }, url: 'https://x' })).toBe(a);
    expect(argsHash({ url: 'https://y', opts: { a: 1, b: [1, 2] } })).not.toBe(a);
  });

  it('does not throw on values JSON cannot represent', () => {
    const cyclic: Record<string, unknown> = { n: 1n };
    cyclic.self = cyclic;
    expect(argsHash(cyclic)).toMatch(/^[0-9a-f]{64}$/);
    expect(argsHash(undefined)).toMatch(/^[0-9a-f]{64}$/);
  });
});
