// The run book against a real Redis: what it writes, in what order, and what a run's start learns
// from it (a cancelled task, a refused write). The order and the cancelled flag are Redis's answers,
// which no mock would give.
import { encodeTaskEvent, redisKeys, TASK_EVENT_FIELD, TaskEvent } from '@flotilla/contracts';
import { testServices, uniquePrefix } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendTaskEvent, readRunLedger, readTaskEvents } from './events.js';
import { readVersionFigures } from './outcomes.js';
import { RunBook } from './run-book.js';

const { redisUrl } = testServices();
const who = { role: 'noop', replica: 'r-1' };
const end = { ok: true, stopReason: 'finish' as const, usage: { steps: 1, toolCalls: 0, tokens: 3, ms: 5 } };

let redis: Redis;
let prefix: string;
let keys: ReturnType<typeof redisKeys>;

beforeEach(async () => {
  redis = new Redis(redisUrl);
  prefix = uniquePrefix('book');
  keys = redisKeys(prefix);
});

afterEach(() => redis.disconnect());

describe('RunBook', () => {
  it('records a run as one started and one finished event, in order, each a TaskEvent of its own entry', async () => {
    const book = new RunBook(redis, prefix, who);
    expect(await book.start('t1', 's1')).toBe('running');
    await book.finish('t1', 's1', end).recorded;

    const entries = await redis.xrange(keys.taskEvents('t1'), '-', '+');
    expect(entries.map(([, fields]) => fields[0])).toEqual([TASK_EVENT_FIELD, TASK_EVENT_FIELD]);
    const events = (await readTaskEvents(redis, prefix, 't1')).map(({ event }) => event);
    expect(events.map((e) => e.type)).toEqual(['subtask_started', 'subtask_finished']);
    expect(events[1]).toMatchObject({ subtaskId: 's1', role: 'noop', replica: 'r-1', ok: true, usage: end.usage });
    expect(await readRunLedger(redis, prefix, 't1')).toEqual({ s1: 1 });
    // The events (and so the ledger) live as long as the task.
    expect(await redis.ttl(keys.taskEvents('t1'))).toBeGreaterThan(0);
  });

  it('tells each start whether its own task was cancelled, and counts every start in the ledger', async () => {
    await redis.set(keys.cancelled('gone'), '1');
    const book = new RunBook(redis, prefix, who);
    // Started together, as concurrent jobs are: each start still hears about its own task.
    const outcomes = await Promise.all([book.start('live', 'a'), book.start('gone', 'x'), book.start('live', 'b')]);
    expect(outcomes).toEqual(['running', 'cancelled', 'running']);
    expect(await readRunLedger(redis, prefix, 'live')).toEqual({ a: 1, b: 1 });
    expect(await readRunLedger(redis, prefix, 'gone')).toEqual({ x: 1 });
  });

  it('rejects a start Redis refuses, so the run never acts unrecorded', async () => {
    // A string where the task's stream should be: XADD fails with WRONGTYPE.
    await redis.set(keys.taskEvents('broken'), 'not a stream');
    const book = new RunBook(redis, prefix, who);
    await expect(book.start('broken', 's1')).rejects.toThrow(/WRONGTYPE/);
    const { sent, recorded } = book.finish('broken', 's1', end);
    await sent;
    await expect(recorded).rejects.toThrow(/WRONGTYPE/);
  });

  it('sends a finished event ahead of the next command on its connection, without awaiting a reply', async () => {
    const book = new RunBook(redis, prefix, who);
    const { sent } = book.finish('t3', 's1', end);
    await sent;
    // Issued after the event was sent and before any reply was awaited: as BullMQ's completion of
    // the job is. Redis runs one connection's commands in order, so this read already sees it.
    expect(await redis.xlen(keys.taskEvents('t3'))).toBe(1);
  });
});

describe('attempt outcomes per version', () => {
  const stopped = (stopReason: 'finish' | 'runtime_error' | 'max_steps' | 'kill_switch', ms: number) => ({
    ok: stopReason === 'finish',
    stopReason,
    usage: { ...end.usage, ms },
  });

  it('records each run end and thrown attempt with its version, and counts only faults as errors', async () => {
    const stable = new RunBook(redis, prefix, { ...who, version: '1.0.0' });
    const canary = new RunBook(redis, prefix, { role: 'noop', replica: 'c-1', version: '1.1.0' });
    await Promise.all([
      stable.finish('t1', 's1', stopped('finish', 100)).recorded,
      stable.finish('t1', 's2', stopped('max_steps', 300)).recorded,
      stable.finish('t1', 's3', stopped('kill_switch', 200)).recorded,
      stable.attemptFailed(50, 'invalid_input'),
      canary.finish('t2', 's1', stopped('finish', 400)).recorded,
      canary.finish('t2', 's2', stopped('runtime_error', 500)).recorded,
      canary.attemptFailed(10),
    ]);
    // A thrown attempt writes no task event: only the runs' ends are in the task's stream.
    expect(await redis.xlen(keys.taskEvents('t2'))).toBe(2);

    const figures = await readVersionFigures(redis, prefix, 'noop', 0);
    expect(figures).toEqual([
      // Budget stops, the kill switch and invalid input are not the image's fault.
      { version: '1.0.0', jobs: 4, errors: 0, errorRate: 0, p50: 100, p95: 300, replicas: ['r-1'] },
      { version: '1.1.0', jobs: 3, errors: 2, errorRate: 2 / 3, p50: 400, p95: 500, replicas: ['c-1'] },
    ]);
  });

  it('reads only the window asked for', async () => {
    const book = new RunBook(redis, prefix, { ...who, version: '1.0.0' });
    await book.finish('t1', 's1', stopped('finish', 100)).recorded;
    const [last] = await redis.xrevrange(keys.roleOutcomes('noop'), '+', '-', 'COUNT', 1);
    const after = Number(last?.[0].split('-')[0]) + 1;
    expect(await readVersionFigures(redis, prefix, 'noop', after)).toEqual([]);
    // The control: the same read from before the entry finds it.
    expect(await readVersionFigures(redis, prefix, 'noop', after - 1)).toHaveLength(1);
  });
});

describe('task event streams', () => {
  it('reads events in order and skips entries that hold no TaskEvent', async () => {
    const key = keys.taskEvents('mixed');
    await appendTaskEvent(redis, prefix, { type: 'planned', taskId: 'mixed', subtasks: [] });
    await redis.xadd(key, '*', TASK_EVENT_FIELD, 'not json');
    await redis.xadd(key, '*', TASK_EVENT_FIELD, JSON.stringify({ type: 'nonsense', taskId: 'mixed' }));
    await redis.xadd(key, '*', 'other-field', encodeTaskEvent({ type: 'cancelled', taskId: 'mixed' }));
    await new RunBook(redis, prefix, who).finish('mixed', 's1', end).recorded;
    await appendTaskEvent(redis, prefix, { type: 'cancelled', taskId: 'mixed' });

    const events = await readTaskEvents(redis, prefix, 'mixed');
    expect(events.map(({ event }) => event.type)).toEqual(['planned', 'subtask_finished', 'cancelled']);
    expect(events.every(({ event }) => TaskEvent.safeParse(event).success)).toBe(true);
    // Resuming after an entry's id reads only what came after it.
    const after = await readTaskEvents(redis, prefix, 'mixed', events[1]?.id);
    expect(after.map(({ event }) => event.type)).toEqual(['cancelled']);
  });
});
