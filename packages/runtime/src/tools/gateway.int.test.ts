// Needs a real Redis: write idempotency is SET NX/TTL claims shared by replicas, and the kill switch
// is a Redis hash plus pub/sub; a fake would not show races between two gateways.
import { redisKeys } from '@flotilla/contracts';
import { startTcpProxy, testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Budget, createBudget } from '../budget/index.js';
import {
  type AnyTool,
  argsHash,
  createKillSwitch,
  createToolGateway,
  defineTool,
  type KillSwitch,
  type ToolGatewayOptions,
  type ToolLog,
} from './index.js';

const { redisUrl } = testServices();

interface LogRecord {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A pino-shaped logger that keeps what it is given, bindings included. */
function recordingLog(records: LogRecord[], bindings: Record<string, unknown> = {}): ToolLog {
  const at =
    (level: LogRecord['level']) =>
    (obj: object, msg?: string): void => {
      records.push({ level, obj: { ...bindings, ...obj }, msg });
    };
  return {
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => recordingLog(records, { ...bindings, ...more }),
  };
}

let prefix: string;
let redis: Redis;
let killSwitch: KillSwitch;
let records: LogRecord[];
let budgets: Budget[];
const extraConnections: Redis[] = [];

const budget = (overrides: Partial<Parameters<typeof createBudget>[0]> = {}) => {
  const b = createBudget({ maxSteps: 10, maxToolCalls: 100, maxSeconds: 60, maxTokens: 1000, ...overrides });
  budgets.push(b);
  return b;
};

function gateway(tools: AnyTool[], overrides: Partial<ToolGatewayOptions> = {}) {
  return createToolGateway({
    tools,
    redis,
    prefix,
    allowlist: ['*'],
    killSwitch,
    log: recordingLog(records),
    backoff: { initialDelayMs: 5, maxDelayMs: 20 },
    ...overrides,
  });
}

let callIndex = 0;
const ids = () => ({ taskId: 'task-1', subtaskId: 'sub-1', callIndex: callIndex++ });

beforeEach(async () => {
  prefix = uniquePrefix('tools');
  redis = new Redis(redisUrl);
  killSwitch = await createKillSwitch({ redis, subscriber: redis.duplicate(), prefix });
  records = [];
  budgets = [];
  callIndex = 0;
});

afterEach(async () => {
  for (const b of budgets) b.dispose();
  await killSwitch.close();
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await Promise.all(extraConnections.splice(0).map((c) => c.quit()));
  await redis.quit();
});

interface CountedSpec<T> {
  name: string;
  sideEffects?: 'read' | 'write';
  dependsOn?: string;
  breakerKey?: string;
  retries?: number;
  retryable?: (err: unknown) => boolean;
  /** Gets the 1-based number of this run. */
  run: (n: number) => Promise<T>;
}

/** A tool that counts how many times it really ran. */
const counted = <T>({ run, ...spec }: CountedSpec<T>) => {
  const state = { runs: 0 };
  const tool = defineTool({
    description: 'test tool',
    input: z.object({ q: z.string() }),
    sideEffects: 'read',
    ...spec,
    run: async () => run(++state.runs),
  });
  return { tool, state };
};

const transient = () => Object.assign(new Error('upstream 503'), { retryable: true });

describe('policy checks', () => {
  it('denies a tool off the allowlist without running it, and an unknown tool', async () => {
    const { tool, state } = counted({ name: 'danger.delete', run: async () => 'deleted' });
    const { tool: search } = counted({ name: 'web.search', run: async () => 'found' });
    const gw = gateway([tool, search], { allowlist: ['web.*'] });

    const denied = await gw.call('danger.delete', { q: 'x' }, { budget: budget(), ...ids() });
    expect(denied).toMatchObject({ ok: false, stopReason: 'policy_denied', code: 'not_allowlisted', attempts: 0 });
    expect(state.runs).toBe(0);

    const unknown = await gw.call('made.up', { q: 'x' }, { budget: budget(), ...ids() });
    expect(unknown).toMatchObject({ ok: false, stopReason: 'policy_denied', code: 'unknown_tool' });

    expect((await gw.call('web.search', { q: 'x' }, { budget: budget(), ...ids() })).ok).toBe(true);
    expect(gw.allowedTools().map((t) => t.name)).toEqual(['web.search']);
  });

  it('rejects invalid input with zod’s message, without running the tool', async () => {
    const { tool, state } = counted({ name: 'web.search', run: async () => 'found' });
    const outcome = await gateway([tool]).call('web.search', { q: 42 }, { budget: budget(), ...ids() });
    expect(outcome).toMatchObject({ ok: false, stopReason: 'invalid_input', code: 'invalid_input' });
    expect(!outcome.ok && outcome.message).toMatch(/q/);
    expect(state.runs).toBe(0);
  });

  it('charges the budget: the call past maxToolCalls is refused with max_tool_calls', async () => {
    const { tool, state } = counted({ name: 'web.search', run: async () => 'found' });
    const gw = gateway([tool]);
    const b = budget({ maxToolCalls: 1 });
    expect((await gw.call('web.search', { q: 'a' }, { budget: b, ...ids() })).ok).toBe(true);
    const refused = await gw.call('web.search', { q: 'b' }, { budget: b, ...ids() });
    expect(refused).toMatchObject({ ok: false, stopReason: 'max_tool_calls', code: 'budget_exceeded' });
    expect(state.runs).toBe(1);
  });

  it('rejects output that fails the output schema', async () => {
    const tool = defineTool({
      name: 'bad.output',
      description: 'x',
      input: z.object({}),
      output: z.object({ n: z.number() }),
      sideEffects: 'read',
      run: async () => ({ n: 'not a number' }) as unknown as { n: number },
    });
    const outcome = await gateway([tool]).call('bad.output', {}, { budget: budget(), ...ids() });
    expect(outcome).toMatchObject({ ok: false, stopReason: 'tool_error', code: 'invalid_output', attempts: 1 });
  });
});

describe('timeouts, retries and the breaker', () => {
  it('times out an attempt that does not finish, and aborts its signal', async () => {
    let sawAbort = false;
    const tool = defineTool({
      name: 'slow.read',
      description: 'never answers',
      input: z.object({}),
      sideEffects: 'read',
      timeoutMs: 50,
      retries: 0,
      run: (_input, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(new Error('aborted'));
          });
        }),
    });
    const outcome = await gateway([tool]).call('slow.read', {}, { budget: budget(), ...ids() });
    expect(outcome).toMatchObject({ ok: false, stopReason: 'tool_error', code: 'timeout', attempts: 1 });
    expect(sawAbort).toBe(true);
  });

  it('retries a transient failure up to the bound, with full-jitter delays within [0, cap]', async () => {
    const { tool, state } = counted({ name: 'flaky.read', retries: 5, run: async () => Promise.reject(transient()) });
    // Every attempt counts toward the breaker; keep it out of the way here.
    const gw = gateway([tool], { backoff: { initialDelayMs: 10, maxDelayMs: 40 }, breaker: { threshold: 100 } });
    const outcome = await gw.call('flaky.read', { q: 'x' }, { budget: budget(), ...ids() });

    expect(outcome).toMatchObject({ ok: false, stopReason: 'tool_error', code: 'tool_failed', attempts: 6 });
    expect(state.runs).toBe(6);
    const retries = records.filter((r) => r.msg === 'tool attempt failed; retrying').map((r) => r.obj);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5]);
    const delays = retries.map((r) => r.delayMs as number);
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(Math.min(40, 10 * 2 ** i));
    });
    expect(new Set(delays).size).toBeGreaterThan(1);
  });

  it('draws delays from the injected random source', async () => {
    const draws = [0.5, 0.25, 0.999];
    let i = 0;
    const { tool } = counted({ name: 'flaky.read', retries: 3, run: async () => Promise.reject(transient()) });
    const gw = gateway([tool], { backoff: { initialDelayMs: 8, maxDelayMs: 30, random: () => draws[i++] ?? 0 } });
    await gw.call('flaky.read', { q: 'x' }, { budget: budget(), ...ids() });
    const delays = records.filter((r) => r.msg === 'tool attempt failed; retrying').map((r) => r.obj.delayMs);
    // caps 8, 16, 30 (32 capped)
    expect(delays).toEqual([4, 4, 29]);
  });

  it('does not retry errors the tool does not mark retryable', async () => {
    const { tool, state } = counted({
      name: 'strict.read',
      retries: 3,
      run: async () => Promise.reject(new Error('400 bad request')),
    });
    const outcome = await gateway([tool]).call('strict.read', { q: 'x' }, { budget: budget(), ...ids() });
    expect(outcome).toMatchObject({ ok: false, code: 'tool_failed', attempts: 1 });
    expect(state.runs).toBe(1);
  });

  it('honours a tool’s own retryable predicate', async () => {
    const { tool, state } = counted({
      name: 'custom.read',
      retries: 2,
      retryable: (err) => err instanceof Error && err.message === 'try again',
      run: async () => Promise.reject(new Error('try again')),
    });
    await gateway([tool]).call('custom.read', { q: 'x' }, { budget: budget(), ...ids() });
    expect(state.runs).toBe(3);
  });

  it('opens the breaker after N consecutive failures, refuses without running, then half-opens', async () => {
    let healthy = false;
    const { tool, state } = counted({
      name: 'dep.read',
      retries: 0,
      run: async () => {
        if (!healthy) throw transient();
        return 'ok';
      },
    });
    const gw = gateway([tool], { breaker: { threshold: 3, halfOpenAfterMs: 150 } });
    const call = () => gw.call('dep.read', { q: 'x' }, { budget: budget(), ...ids() });

    for (let i = 0; i < 3; i++) expect(await call()).toMatchObject({ ok: false, code: 'tool_failed' });
    expect(gw.circuit('dep.read')).toBe('open');
    expect(await call()).toMatchObject({ ok: false, stopReason: 'tool_error', code: 'circuit_open', attempts: 0 });
    expect(state.runs).toBe(3);

    healthy = true;
    const recovered = await waitFor(
      async () => {
        const outcome = await call();
        return outcome.ok ? outcome : undefined;
      },
      { what: 'the breaker to let a test call through' },
    );
    expect(recovered.output).toBe('ok');
    expect(state.runs).toBe(4);
    expect(gw.circuit('dep.read')).toBe('closed');
  });

  it('forms a retry’s write keys with the failed subtask’s id (keyScope), so its writes replay', async () => {
    const { tool, state } = counted({ name: 'ledger.write', sideEffects: 'write', run: async (n) => `entry ${n}` });
    const gw = gateway([tool]);
    const first = await gw.call('ledger.write', { q: 'x' }, { budget: budget(), ...ids(), subtaskId: 's1' });
    const retry = await gw.call(
      'ledger.write',
      { q: 'x' },
      { budget: budget(), ...ids(), subtaskId: 's3', keyScope: 's1' },
    );
    const other = await gw.call('ledger.write', { q: 'x' }, { budget: budget(), ...ids(), subtaskId: 's4' });
    expect(first).toMatchObject({ ok: true, output: 'entry 1', cached: false });
    expect(retry).toMatchObject({ ok: true, output: 'entry 1', cached: true });
    expect(other).toMatchObject({ ok: true, output: 'entry 2', cached: false });
    expect(state.runs).toBe(2);
  });

  it('fails a tool whose fleet service is down `unavailable`, naming it, and a bad call as its own failure', async () => {
    let down = true;
    const { tool: search, state } = counted({
      name: 'memory.search',
      dependsOn: 'memory',
      breakerKey: 'memory',
      run: async () => {
        if (down) throw transient();
        return 'hits';
      },
    });
    const { tool: write } = counted({
      name: 'notes.write',
      sideEffects: 'write',
      dependsOn: 'memory',
      breakerKey: 'memory',
      retries: 0,
      run: async () => Promise.reject(new Error('record too large')),
    });
    const gw = gateway([search, write], { breaker: { threshold: 3, halfOpenAfterMs: 60_000 } });
    const call = (name: string) => gw.call(name, { q: 'x' }, { budget: budget(), ...ids() });

    // Three transient attempts: the service is down, and the shared breaker opens.
    expect(await call('memory.search')).toMatchObject({
      ok: false,
      stopReason: 'tool_error',
      code: 'unavailable',
      service: 'memory',
      attempts: 3,
    });
    expect(gw.circuit('notes.write')).toBe('open');
    // The other memory tool meets the open breaker at once, and is told the same.
    const refused = await call('notes.write');
    expect(refused).toMatchObject({ ok: false, code: 'unavailable', service: 'memory', attempts: 0 });
    expect(!refused.ok && refused.message).toMatch(/^memory is unavailable \(tool notes.write: /);
    expect(state.runs).toBe(3);

    // With the service back, a non-transient error is the call's own failure, not an outage.
    down = false;
    const fresh = gateway([search, write]);
    expect(await fresh.call('memory.search', { q: 'x' }, { budget: budget(), ...ids() })).toMatchObject({ ok: true });
    const own = await fresh.call('notes.write', { q: 'y' }, { budget: budget(), ...ids() });
    expect(own).toMatchObject({ ok: false, code: 'tool_failed' });
    expect(own).not.toHaveProperty('service');
  });

  it('stops a call at the run deadline with max_seconds, without counting it against the breaker', async () => {
    const tool = defineTool({
      name: 'slow.read',
      description: 'waits for its signal',
      input: z.object({}),
      sideEffects: 'read',
      timeoutMs: 60_000,
      run: (_input, ctx) =>
        new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted')))),
    });
    const gw = gateway([tool], { breaker: { threshold: 1, halfOpenAfterMs: 60_000 } });
    const outcome = await gw.call('slow.read', {}, { budget: budget({ maxSeconds: 0.2 }), ...ids() });
    expect(outcome).toMatchObject({ ok: false, stopReason: 'max_seconds', code: 'aborted', attempts: 1 });
    expect(gw.circuit('slow.read')).toBe('closed');
  });
});

describe('kill switch', () => {
  it('blocks writes, named tools and everything, as the shared state changes', async () => {
    const { tool: write, state: writes } = counted({
      name: 'notes.write',
      sideEffects: 'write',
      run: async () => 'saved',
    });
    const { tool: read } = counted({ name: 'web.search', run: async () => 'found' });
    const gw = gateway([write, read]);
    const call = (name: string) => gw.call(name, { q: 'x' }, { budget: budget(), ...ids() });

    await killSwitch.set({ noWrites: true });
    expect(await call('notes.write')).toMatchObject({ ok: false, stopReason: 'kill_switch', code: 'kill_switch' });
    expect(writes.runs).toBe(0);
    expect((await call('web.search')).ok).toBe(true);

    await killSwitch.set({ noWrites: false, tools: ['web.*'] });
    expect((await call('notes.write')).ok).toBe(true);
    expect(await call('web.search')).toMatchObject({ ok: false, code: 'kill_switch' });

    await killSwitch.set({ tools: [], global: true });
    expect(await call('notes.write')).toMatchObject({ ok: false, code: 'kill_switch' });
    await killSwitch.set({ global: false });
    expect((await call('web.search')).ok).toBe(true);
  });

  it('applies the start-time (env) state at once, on top of the shared state', async () => {
    const local = await createKillSwitch({ redis, subscriber: redis.duplicate(), prefix, initial: 'writes' });
    try {
      expect(local.blocks('notes.write', 'write')).toBe(true);
      expect(local.blocks('web.search', 'read')).toBe(false);
      await killSwitch.set({ tools: ['web.search'] });
      await waitFor(() => local.blocks('web.search', 'read'), { what: 'the other replica to apply the change' });
      await killSwitch.set({ noWrites: false, tools: [] });
      await waitFor(() => !local.blocks('web.search', 'read'), { what: 'the change to be lifted' });
      expect(local.blocks('notes.write', 'write')).toBe(true); // the env floor stays
    } finally {
      await local.close();
    }
  });

  it('fails closed: while its state cannot be read, every call is refused with kill_switch, until it can', async () => {
    // A real TCP hop we cut: the replica's Redis is gone, the switch is off, and an operator may be
    // flipping it right now without this replica hearing of it.
    const proxy = await startTcpProxy(redisUrl);
    const viaProxy = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    viaProxy.on('error', () => {});
    const subscriber = viaProxy.duplicate();
    subscriber.on('error', () => {});
    const local = await createKillSwitch({ redis: viaProxy, subscriber, prefix, refreshMs: 100 });
    const { tool: read, state: reads } = counted({ name: 'web.search', run: async () => 'found' });
    const gw = gateway([read], { killSwitch: local });
    const call = () => gw.call('web.search', { q: 'x' }, { budget: budget(), ...ids() });
    try {
      expect((await call()).ok).toBe(true); // control: fresh state, switch off
      expect(local.fresh()).toBe(true);

      await proxy.set('refuse');
      await waitFor(() => !local.fresh(), { what: 'the state to go stale' });
      expect(await call()).toMatchObject({ ok: false, stopReason: 'kill_switch', code: 'kill_switch' });
      expect(reads.runs).toBe(1);
      expect(local.blocks('anything.else', 'read')).toBe(true);

      await proxy.set('forward');
      await waitFor(() => local.fresh(), { what: 'the state to be read again' });
      expect((await call()).ok).toBe(true);
      expect(reads.runs).toBe(2);
    } finally {
      await local.close();
      viaProxy.disconnect();
      await proxy.close();
    }
  });
});

describe('write idempotency', () => {
  const slowWrite = (ms = 0) =>
    counted({
      name: 'notes.write',
      sideEffects: 'write',
      run: async (n) => {
        await new Promise((r) => setTimeout(r, ms));
        return { saved: n };
      },
    });
  const read = () => counted({ name: 'notes.read', run: async (n) => ({ read: n }) });
  /** The options of one run of subtask t/s: a redelivery is a new run with a fresh count of writes. */
  const run = () => {
    const writes = new Map<string, number>();
    let callIndex = 0;
    return () => ({ budget: budget(), taskId: 't', subtaskId: 's', callIndex: callIndex++, writes });
  };
  const keyOf = (args: unknown, n = 0) => redisKeys(prefix).toolIdempotency(`t:s:notes.write:${argsHash(args)}:${n}`);

  it('runs a write once and replays its result to a redelivered run', async () => {
    const { tool, state } = slowWrite();
    const gw = gateway([tool]);
    const first = await gw.call('notes.write', { q: 'x' }, run()());
    const again = await gw.call('notes.write', { q: 'x' }, run()());
    expect(first).toEqual({ ok: true, output: { saved: 1 }, attempts: 1, cached: false });
    expect(again).toEqual({ ok: true, output: { saved: 1 }, attempts: 0, cached: true });
    expect(state.runs).toBe(1);
    expect(await redis.ttl(keyOf({ q: 'x' }))).toBeGreaterThan(86_000);
    // Another subtask's identical write is another write.
    expect(await gw.call('notes.write', { q: 'x' }, { ...run()(), subtaskId: 's2' })).toMatchObject({ cached: false });
    expect(state.runs).toBe(2);
  });

  it('replays the right write to a redelivered run that makes an extra read before it', async () => {
    const { tool, state } = slowWrite();
    const reader = read();
    const gw = gateway([tool, reader.tool]);
    const first = run();
    expect(await gw.call('notes.write', { q: 'x' }, first())).toMatchObject({ ok: true, cached: false });
    // The redelivered model reads first this time: the write is still the same write.
    const second = run();
    expect(await gw.call('notes.read', { q: 'r' }, second())).toMatchObject({ ok: true, output: { read: 1 } });
    expect(await gw.call('notes.write', { q: 'x' }, second())).toEqual({
      ok: true,
      output: { saved: 1 },
      attempts: 0,
      cached: true,
    });
    expect(state.runs).toBe(1);
  });

  it('runs a redelivered run’s write with other arguments, never replaying another write’s result', async () => {
    const { tool, state } = slowWrite();
    const gw = gateway([tool]);
    expect(await gw.call('notes.write', { q: 'x' }, run()())).toMatchObject({ output: { saved: 1 } });
    expect(await gw.call('notes.write', { q: 'y' }, run()())).toEqual({
      ok: true,
      output: { saved: 2 },
      attempts: 1,
      cached: false,
    });
    expect(state.runs).toBe(2);
  });

  it('keys by the validated arguments: defaults filled in and key order do not make another write', async () => {
    const state = { runs: 0 };
    const tool = defineTool({
      name: 'notes.write',
      description: 'x',
      input: z.object({ q: z.string(), tag: z.string().default('none') }),
      sideEffects: 'write',
      run: async () => ++state.runs,
    });
    const gw = gateway([tool]);
    await gw.call('notes.write', { q: 'x' }, run()());
    expect(await gw.call('notes.write', { tag: 'none', q: 'x' }, run()())).toMatchObject({ cached: true });
    expect(state.runs).toBe(1);
  });

  it('writes an identical write twice when a run makes it twice, and replays both to its redelivery', async () => {
    const { tool, state } = slowWrite();
    const gw = gateway([tool]);
    const first = run();
    await gw.call('notes.write', { q: 'x' }, first());
    await gw.call('notes.write', { q: 'x' }, first());
    expect(state.runs).toBe(2);
    const second = run();
    const replays = [
      await gw.call('notes.write', { q: 'x' }, second()),
      await gw.call('notes.write', { q: 'x' }, second()),
    ];
    expect(replays).toMatchObject([
      { cached: true, output: { saved: 1 } },
      { cached: true, output: { saved: 2 } },
    ]);
    expect(state.runs).toBe(2);
  });

  it('answers idempotency_conflict when an explicit key already holds a different write', async () => {
    const { tool, state } = slowWrite();
    const gw = gateway([tool]);
    const opts = { budget: budget(), taskId: 't', subtaskId: 's', callIndex: 0, idempotencyKey: 'order-42' };
    expect(await gw.call('notes.write', { q: 'x' }, opts)).toMatchObject({ ok: true, cached: false });
    expect(await gw.call('notes.write', { q: 'x' }, opts)).toMatchObject({ ok: true, cached: true });
    expect(await gw.call('notes.write', { q: 'y' }, opts)).toMatchObject({
      ok: false,
      stopReason: 'tool_error',
      code: 'idempotency_conflict',
    });
    expect(state.runs).toBe(1);
  });

  it('runs once when two replicas call with the same key at the same time', async () => {
    const { tool, state } = slowWrite(150);
    const other = new Redis(redisUrl);
    extraConnections.push(other);
    const a = gateway([tool]);
    const b = gateway([tool], { redis: other });
    const outcomes = await Promise.all([
      a.call('notes.write', { q: 'x' }, run()()),
      b.call('notes.write', { q: 'x' }, run()()),
    ]);
    expect(state.runs).toBe(1);
    expect(outcomes.every((o) => o.ok && (o.output as { saved: number }).saved === 1)).toBe(true);
    expect(outcomes.map((o) => o.ok && o.cached).sort()).toEqual([false, true]);
  });

  it('lets a retry run again after a failed write (the claim is released), then replays the success', async () => {
    let fail = true;
    const { tool, state } = counted({
      name: 'notes.write',
      sideEffects: 'write',
      retries: 0,
      run: async (n) => {
        if (fail) throw new Error('disk full');
        return n;
      },
    });
    const gw = gateway([tool]);
    const first = run();
    expect((await gw.call('notes.write', { q: 'x' }, first())).ok).toBe(false);
    fail = false;
    // The model tries again in the same run: the failed attempt left no record to step past.
    expect(await gw.call('notes.write', { q: 'x' }, first())).toMatchObject({ ok: true, output: 2 });
    expect(state.runs).toBe(2);
    // A redelivery of that run meets the success.
    expect(await gw.call('notes.write', { q: 'x' }, run()())).toMatchObject({ ok: true, output: 2, cached: true });
    expect(state.runs).toBe(2);
  });

  it('is not blocked forever by a crashed claimant: its claim expires', async () => {
    const { tool, state } = slowWrite();
    // What a replica that died mid-call leaves behind.
    await redis.set(keyOf({ q: 'x' }), JSON.stringify({ state: 'claimed', token: 'dead-replica' }), 'PX', 300);
    const outcome = await gateway([tool]).call('notes.write', { q: 'x' }, run()());
    expect(outcome).toMatchObject({ ok: true, cached: false });
    expect(state.runs).toBe(1);
  });

  it('gives the tool its idempotency key', async () => {
    let seen: string | undefined;
    const tool = defineTool({
      name: 'notes.write',
      description: 'x',
      input: z.object({}),
      sideEffects: 'write',
      run: async (_i, ctx) => {
        seen = ctx.idempotencyKey;
        return null;
      },
    });
    await gateway([tool]).call('notes.write', {}, { budget: budget(), taskId: 'T', subtaskId: 'S', callIndex: 3 });
    expect(seen).toBe(`T:S:notes.write:${argsHash({})}:0`);
  });
});

describe('audit', () => {
  it('writes one audit record per call with a hash of the args, never the args', async () => {
    const { tool } = counted({ name: 'web.search', run: async () => 'found' });
    const gw = gateway([tool], { allowlist: ['web.*'] });
    const canary = 'canary-7f3a9c';
    await gw.call('web.search', { q: canary }, { budget: budget(), ...ids(), traceId: 'trace-1' });
    await gw.call('nope', { q: canary }, { budget: budget(), ...ids() });

    const audits = records.filter((r) => r.obj.audit).map((r) => r.obj.audit as Record<string, unknown>);
    expect(audits).toHaveLength(2);
    expect(audits[0]).toMatchObject({
      tool: 'web.search',
      argsHash: argsHash({ q: canary }),
      outcome: 'ok',
      attempts: 1,
      traceId: 'trace-1',
      taskId: 'task-1',
      subtaskId: 'sub-1',
    });
    expect(audits[0]?.durationMs).toEqual(expect.any(Number));
    expect(audits[1]).toMatchObject({ tool: 'nope', outcome: 'policy_denied', code: 'unknown_tool' });
    expect(JSON.stringify(records)).not.toContain(canary);
  });
});

describe('tool results in the audit log', () => {
  it('logs a result only as its size unless sampled, never the whole payload', async () => {
    const { createLogger } = await import('../logger/index.js');
    const lines: string[] = [];
    const destination = { write: (line: string) => void lines.push(line) };
    const big = defineTool({
      name: 'big.read',
      description: 'returns a large page',
      input: z.object({}),
      sideEffects: 'read',
      run: async () => ({ page: 'needle-'.repeat(2000) }),
    });
    const quiet = createLogger({ service: 't', destination, toolResultSampleRate: 0 });
    const g = gateway([big], { log: quiet });
    const outcome = await g.call('big.read', {}, { budget: budget(), taskId: 't', subtaskId: 's', callIndex: 0 });
    expect(outcome.ok).toBe(true);
    const audit = lines
      .map((l) => JSON.parse(l) as Record<string, { chars?: number; sample?: string }>)
      .find((l) => l.audit);
    expect(audit?.toolResult?.chars).toBeGreaterThan(14_000);
    expect(audit?.toolResult?.sample).toBeUndefined();
    expect(lines.join('')).not.toContain('needle-needle-needle');

    lines.length = 0;
    const loud = createLogger({ service: 't', destination, toolResultSampleRate: 1 });
    await gateway([big], { log: loud }).call(
      'big.read',
      {},
      { budget: budget(), taskId: 't', subtaskId: 's', callIndex: 1 },
    );
    const sampled = lines.map((l) => JSON.parse(l) as Record<string, { sample?: string }>).find((l) => l.audit);
    expect(sampled?.toolResult?.sample?.length).toBeGreaterThan(0);
    expect(sampled?.toolResult?.sample?.length).toBeLessThan(1000);
  });
});
