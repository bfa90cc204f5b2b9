// The run book against a real Redis: what it writes, in what order relative to other commands on
// its connection, and what it reports back to a run's start.
import { redisKeys, TaskEvent } from '@flotilla/contracts';
import { testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendTaskEvent, parseStreamEntry, readRunLedger, readTaskEvents } from './events.js';
import { RunBook, type StartOutcome } from './run-book.js';

const { redisUrl } = testServices();
const who = { role: 'noop', replica: 'r-1' };
const end = { ok: true, stopReason: 'finish' as const, usage: { steps: 1, toolCalls: 0, tokens: 3, ms: 5 } };

let redis: Redis;
let prefix: string;
let keys: ReturnType<typeof redisKeys>;
const failures: unknown[] = [];

/** A StartListener that records what it heard. */
function listener() {
  const heard: StartOutcome[] = [];
  return { heard, started: (o: StartOutcome) => void heard.push(o) };
}

beforeEach(async () => {
  redis = new Redis(redisUrl);
  prefix = uniquePrefix('book');
  keys = redisKeys(prefix);
  failures.length = 0;
});

afterEach(() => redis.disconnect());

describe('RunBook', () => {
  it('writes its ops ahead of the next command on its connection, with no round trip of its own', async () => {
    const book = new RunBook(redis, prefix, who, (err) => failures.push(err));
    const run = listener();
    book.start('t1', 's1', run);
    book.finish('t1', 's1', end);
    // Sent in the same turn the ops were queued in: if the book had not gone first, the reply
    // would not hold its events (nothing else writes them).
    const entries = await redis.xrange(keys.taskEvents('t1'), '-', '+');
    expect(entries).toHaveLength(1);
    const events = parseStreamEntry(entries[0]?.[1] ?? []);
    expect(events.map((e) => e.type)).toEqual(['subtask_started', 'subtask_finished']);
    expect(events.every((e) => TaskEvent.safeParse(e).success)).toBe(true);
    expect(events[1]).toMatchObject({ subtaskId: 's1', role: 'noop', replica: 'r-1', ok: true, usage: end.usage });
    await waitFor(async () => run.heard.length > 0 || undefined);
    expect(run.heard).toEqual(['running']);
    expect(await readRunLedger(redis, prefix, 't1')).toEqual({ s1: 1 });
  });

  it('flushes on its own by the end of the event-loop turn when no other command comes', async () => {
    const book = new RunBook(redis, prefix, who, (err) => failures.push(err));
    book.finish('t2', 's1', end);
    const reader = new Redis(redisUrl);
    try {
      await waitFor(async () => (await reader.xlen(keys.taskEvents('t2'))) === 1 || undefined);
    } finally {
      reader.disconnect();
    }
    expect(failures).toEqual([]);
  });

  it("groups a batch by task, counts every start, and reports each task's cancellation to its own runs", async () => {
    await redis.set(keys.cancelled('gone'), '1');
    const book = new RunBook(redis, prefix, who, (err) => failures.push(err));
    const live = [listener(), listener()];
    const cancelled = listener();
    book.start('live', 'a', live[0] ?? listener());
    book.start('gone', 'x', cancelled);
    book.start('live', 'b', live[1] ?? listener());
    book.finish('live', 'a', end);
    await waitFor(async () => cancelled.heard.length > 0 || undefined);
    await waitFor(async () => live.every((l) => l.heard.length > 0) || undefined);

    expect(live.map((l) => l.heard)).toEqual([['running'], ['running']]);
    expect(cancelled.heard).toEqual(['cancelled']);
    expect(await readRunLedger(redis, prefix, 'live')).toEqual({ a: 1, b: 1 });
    expect(await readRunLedger(redis, prefix, 'gone')).toEqual({ x: 1 });
    const liveEvents = (await readTaskEvents(redis, prefix, 'live')).map(({ event }) => [
      event.type,
      'subtaskId' in event ? event.subtaskId : '',
    ]);
    expect(liveEvents).toEqual([
      ['subtask_started', 'a'],
      ['subtask_started', 'b'],
      ['subtask_finished', 'a'],
    ]);
    // The events (and so the ledger) live as long as the task, cancelled or not.
    expect(await redis.ttl(keys.taskEvents('live'))).toBeGreaterThan(0);
    expect(await redis.ttl(keys.taskEvents('gone'))).toBeGreaterThan(0);
  });

  it('fails the starts and reports the finishes of a batch Redis refuses', async () => {
    // A string where the task's stream should be: XADD fails with WRONGTYPE, the script aborts.
    await redis.set(keys.taskEvents('broken'), 'not a stream');
    const book = new RunBook(redis, prefix, who, (err) => failures.push(err));
    const run = listener();
    book.start('broken', 's1', run);
    book.finish('broken', 's0', end);
    await waitFor(async () => run.heard.length > 0 || undefined);
    expect(run.heard[0]).toBeInstanceOf(Error);
    expect(String(run.heard[0])).toMatch(/WRONGTYPE/);
    expect(failures).toHaveLength(1);
  });
});

describe('task event streams', () => {
  it('reads single events and batched entries in order, and skips what is not a TaskEvent', async () => {
    const key = keys.taskEvents('mixed');
    await appendTaskEvent(redis, prefix, { type: 'planned', taskId: 'mixed', subtasks: [] });
    await redis.xadd(key, '*', 'event', 'not json');
    const cancelled = { type: 'cancelled', taskId: 'mixed', at: new Date().toISOString() };
    // An array belongs in `events`; under `event` it is not a TaskEvent.
    await redis.xadd(key, '*', 'event', JSON.stringify([cancelled]));
    const book = new RunBook(redis, prefix, who, (err) => failures.push(err));
    book.finish('mixed', 's1', end);
    await redis.xadd(key, '*', 'events', JSON.stringify([{ type: 'nonsense' }, cancelled]));

    const events = await readTaskEvents(redis, prefix, 'mixed');
    expect(events.map(({ event }) => event.type)).toEqual(['planned', 'subtask_finished', 'cancelled']);
    // Resuming after an entry skips all of it.
    const after = await readTaskEvents(redis, prefix, 'mixed', events[1]?.id);
    expect(after.map(({ event }) => event.type)).toEqual(['cancelled']);
  });
});
