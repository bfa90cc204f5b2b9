// Needs a real Chroma (testServices().chromaUrl): collections, metadata filters and deletes are Chroma's behaviour.
import { type FakeVendor, startFakeOpenAI, testServices, uniquePrefix } from '@flotilla/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OllamaEmbeddingFunction } from './embeddings.js';
import { MemoryError } from './errors.js';
import { createMemory, type Memory } from './memory.js';

describe('memory (Chroma)', () => {
  let memory: Memory;
  let namespaces: string[];

  const ns = (name: string) => {
    namespaces.push(name);
    return name;
  };

  beforeEach(() => {
    memory = createMemory({ url: testServices().chromaUrl, collectionPrefix: uniquePrefix('mem') });
    namespaces = [];
  });
  afterEach(async () => {
    for (const n of namespaces) await memory.deleteNamespace(n);
  });

  it('answers ping when Chroma is up', async () => {
    await expect(memory.ping()).resolves.toBeUndefined();
  });

  it('returns the lexically closest document first, within a metadata filter', async () => {
    const notes = ns('notes');
    await memory.add(notes, [
      { text: 'BullMQ retries failed jobs with exponential backoff', metadata: { taskId: 't1' } },
      { text: 'Chroma stores embeddings in collections', metadata: { taskId: 't1' } },
      { text: 'BullMQ retries failed jobs with exponential backoff and jitter', metadata: { taskId: 't2' } },
      { text: 'A recipe for lemon cake', metadata: { taskId: 't1' } },
    ]);
    const hits = await memory.query(notes, 'how does BullMQ retry failed jobs', { n: 3, where: { taskId: 't1' } });
    expect(hits).toHaveLength(3);
    expect(hits[0]?.text).toBe('BullMQ retries failed jobs with exponential backoff');
    expect(hits.every((h) => h.metadata.taskId === 't1')).toBe(true);
    expect(hits.map((h) => h.distance)).toEqual([...hits.map((h) => h.distance)].sort((a, b) => a - b));
    expect(typeof hits[0]?.metadata.createdAt).toBe('number');
  });

  it('is idempotent: re-adding the same content keeps the count and the ids', async () => {
    const notes = ns('notes');
    const docs = [{ text: 'first note' }, { text: 'second note' }, { id: 'fixed-id', text: 'third note' }];
    const ids = await memory.add(notes, docs);
    expect(await memory.count(notes)).toBe(3);
    expect(await memory.add(notes, docs)).toEqual(ids);
    expect(await memory.count(notes)).toBe(3);
    expect(ids[2]).toBe('fixed-id');
  });

  it('cleans up only documents older than the cutoff', async () => {
    const notes = ns('notes');
    const old = Date.now() - 10 * 24 * 3600 * 1000;
    await memory.add(notes, [
      { text: 'old one', metadata: { createdAt: old } },
      { text: 'old two', metadata: { createdAt: old + 1 } },
      { text: 'fresh one' },
    ]);
    const removed = await memory.cleanup(notes, { olderThanMs: 24 * 3600 * 1000 });
    expect(removed).toBe(2);
    expect(await memory.count(notes)).toBe(1);
    const [hit] = await memory.query(notes, 'one', { n: 5 });
    expect(hit?.text).toBe('fresh one');
  });

  it('keeps namespaces isolated', async () => {
    const a = ns('team/a');
    const b = ns('team-a');
    await memory.add(a, [{ text: 'only in a' }]);
    await memory.add(b, [{ text: 'only in b' }, { text: 'also in b' }]);
    expect(await memory.count(a)).toBe(1);
    expect(await memory.count(b)).toBe(2);
    expect((await memory.query(a, 'only in', { n: 5 })).map((h) => h.text)).toEqual(['only in a']);
    await memory.deleteNamespace(a);
    expect(await memory.count(a)).toBe(0);
    expect(await memory.count(b)).toBe(2);
  });

  it('reports an unreachable Chroma as a retryable MemoryError', async () => {
    const down = createMemory({ url: 'http://127.0.0.1:9' });
    const err = await down.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryError);
    // Retryable: the tool gateway and BullMQ try again rather than ending the run.
    expect(err).toMatchObject({ code: 'FLOTILLA_MEMORY', operation: 'ping', retryable: true });
  });

  it('reports a request Chroma rejects as a MemoryError that is not retried', async () => {
    const notes = ns('rejects');
    await memory.add(notes, [{ text: 'a note' }]);
    const err = await memory.query(notes, 'x', { n: 1, where: { $bogus: 1 } as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryError);
    expect(err).toMatchObject({ retryable: false });
  });
});

describe('memory with a remote embedding function', () => {
  let fake: FakeVendor;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('embeds through Ollama /api/embed on add and on query', async () => {
    const memory = createMemory({
      url: testServices().chromaUrl,
      collectionPrefix: uniquePrefix('mem'),
      embedding: new OllamaEmbeddingFunction({ url: fake.url, model: 'all-minilm' }),
    });
    try {
      await memory.add('notes', [{ text: 'redis queue' }, { text: 'lemon cake' }]);
      const [hit] = await memory.query('notes', 'redis', { n: 1 });
      expect(hit?.text).toBe('redis queue');
      const embeds = fake.requests.filter((r) => r.path === '/api/embed').map((r) => r.body);
      expect(embeds).toEqual([
        { model: 'all-minilm', input: ['redis queue', 'lemon cake'] },
        { model: 'all-minilm', input: ['redis'] },
      ]);
    } finally {
      await memory.deleteNamespace('notes');
    }
  });
});
