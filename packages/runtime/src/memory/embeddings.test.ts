// The openai/ollama embedding functions talk to the local fake vendor (127.0.0.1); no Chroma needed here.
import { type FakeVendor, fakeEmbedding, startFakeOpenAI } from '@flotilla/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmbeddingFunction,
  HASH_DIMENSIONS,
  HashEmbeddingFunction,
  OllamaEmbeddingFunction,
  OpenAIEmbeddingFunction,
} from './embeddings.js';
import { EmbeddingError, EmbeddingUnavailableError } from './errors.js';
import { collectionName, contentId } from './memory.js';

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] ?? 0), 0);

describe('hash embedding', () => {
  const ef = new HashEmbeddingFunction();

  it('is deterministic, 384-dimensional and L2-normalised', async () => {
    const [a, b, empty] = await ef.generate(['The cat sat on the mat', 'The cat sat on the mat', '']);
    expect(a).toEqual(b);
    expect(a).toHaveLength(HASH_DIMENSIONS);
    expect(Math.hypot(...(a ?? []))).toBeCloseTo(1, 10);
    expect(Math.hypot(...(empty ?? []))).toBeCloseTo(1, 10);
  });

  it('puts texts that share words closer than texts that do not (lexical, not semantic)', () => {
    const q = ef.embed('redis queue retries');
    const near = ef.embed('BullMQ retries jobs from a Redis queue');
    const far = ef.embed('a recipe for lemon cake');
    expect(dot(q, near)).toBeGreaterThan(dot(q, far));
  });

  it('is the default when MEMORY_EMBEDDING is unset', () => {
    expect(createEmbeddingFunction({})).toBeInstanceOf(HashEmbeddingFunction);
  });
});

describe('remote embedding functions', () => {
  let fake: FakeVendor;
  beforeEach(async () => {
    fake = await startFakeOpenAI();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('openai: POST /v1/embeddings with model and a batch input, Bearer key', async () => {
    const ef = createEmbeddingFunction({
      MEMORY_EMBEDDING: 'openai',
      MEMORY_EMBEDDING_URL: fake.url,
      MEMORY_EMBEDDING_MODEL: 'text-embedding-3-small',
      MEMORY_EMBEDDING_API_KEY: 'sk-embed-secret',
    });
    expect(ef).toBeInstanceOf(OpenAIEmbeddingFunction);
    const vectors = await ef.generate(['alpha beta', 'gamma']);
    expect(vectors).toEqual([fakeEmbedding('alpha beta'), fakeEmbedding('gamma')]);
    const req = fake.requests[0];
    expect(req?.path).toBe('/v1/embeddings');
    expect(req?.headers.authorization).toBe('Bearer sk-embed-secret');
    expect(req?.body).toEqual({ model: 'text-embedding-3-small', input: ['alpha beta', 'gamma'] });
  });

  it('ollama: POST /api/embed with model and a batch input', async () => {
    const ef = createEmbeddingFunction({
      MEMORY_EMBEDDING: 'ollama',
      MEMORY_EMBEDDING_URL: fake.url,
      MEMORY_EMBEDDING_MODEL: 'all-minilm',
    });
    expect(ef).toBeInstanceOf(OllamaEmbeddingFunction);
    const vectors = await ef.generate(['one', 'two']);
    expect(vectors).toEqual([fakeEmbedding('one'), fakeEmbedding('two')]);
    expect(fake.requests[0]?.path).toBe('/api/embed');
    expect(fake.requests[0]?.body).toEqual({ model: 'all-minilm', input: ['one', 'two'] });
  });

  it('fails with a typed error, without the key, when the endpoint does', async () => {
    const ef = new OpenAIEmbeddingFunction({ url: `${fake.url}/nowhere`, model: 'm', apiKey: 'sk-embed-secret' });
    const err = await ef.generate(['x']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddingError);
    expect((err as Error).message).toContain('HTTP 404');
    expect((err as Error).message).not.toContain('sk-embed-secret');
  });

  it('default: a clear error when @chroma-core/default-embed is not installed', async () => {
    const err = await createEmbeddingFunction({ MEMORY_EMBEDDING: 'default' })
      .generate(['x'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddingUnavailableError);
    expect((err as Error).message).toContain('@chroma-core/default-embed');
  });
});

describe('collection names', () => {
  const valid = (n: string) =>
    n.length >= 3 && n.length <= 63 && /^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$/.test(n) && !n.includes('..');

  it('keeps clean namespaces readable and makes any namespace valid and distinct', () => {
    expect(collectionName('flotilla', 'notes')).toBe('flotilla-notes');
    const names = ['a/b', 'a-b', 'a b', '..', 'ü', 'x'.repeat(200), '-notes-'].map((ns) =>
      collectionName('flotilla', ns),
    );
    for (const n of names) expect(valid(n), n).toBe(true);
    expect(new Set(names).size).toBe(names.length);
  });

  it('derives ids from content', () => {
    expect(contentId('same')).toBe(contentId('same'));
    expect(contentId('same')).not.toBe(contentId('other'));
  });
});
