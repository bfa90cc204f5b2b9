import type { EmbeddingFunction, EmbeddingFunctionSpace } from 'chromadb';
import { scrub } from '../llm/http.js';
import { apiUrl } from '../llm/openai.js';
import type { MemoryConfig } from './config.js';
import { EmbeddingError, EmbeddingUnavailableError } from './errors.js';

/** Dimensions of the hash embedding: small enough to be cheap, large enough that collisions are rare for short notes. */
export const HASH_DIMENSIONS = 384;
const EMBED_TIMEOUT_MS = 30_000;
const SPACES: EmbeddingFunctionSpace[] = ['cosine', 'l2', 'ip'];

/** FNV-1a, 32 bit: tiny, fast, and stable across processes and Node versions (unlike a seeded hash). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Feature hashing of word unigrams and bigrams into a fixed-size, L2-normalised vector.
 * LEXICAL, NOT SEMANTIC: "car" and "automobile" are unrelated to it, "cat sat" and "sat cat" are
 * close. It needs no model, no network and no key, gives the same vector everywhere, and ranks
 * documents by shared words, which is what the offline demo and the tests need.
 */
export class HashEmbeddingFunction implements EmbeddingFunction {
  readonly name = 'flotilla-hash';
  readonly dimensions: number;

  constructor({ dimensions = HASH_DIMENSIONS }: { dimensions?: number } = {}) {
    this.dimensions = dimensions;
  }

  embed(text: string): number[] {
    const v = new Array<number>(this.dimensions).fill(0);
    const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
    const add = (feature: string, weight: number) => {
      const i = fnv1a(feature) % this.dimensions;
      // A second hash picks the sign so collisions cancel out on average instead of piling up.
      const sign = fnv1a(`~${feature}`) & 1 ? 1 : -1;
      v[i] = (v[i] ?? 0) + sign * weight;
    };
    words.forEach((w, i) => {
      add(`u:${w}`, 1);
      if (i > 0) add(`b:${words[i - 1]} ${w}`, 0.5);
    });
    const norm = Math.hypot(...v);
    // An empty text still needs a unit vector: cosine distance of a zero vector is undefined.
    if (norm === 0) return v.map((_, i) => (i === 0 ? 1 : 0));
    return v.map((x) => x / norm);
  }

  async generate(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.embed(t));
  }

  defaultSpace(): EmbeddingFunctionSpace {
    return 'cosine';
  }

  supportedSpaces(): EmbeddingFunctionSpace[] {
    return SPACES;
  }
}

async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  secrets: string[],
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(EMBED_TIMEOUT_MS),
    });
  } catch (err) {
    throw new EmbeddingError(scrub(`embedding request to ${url} failed: ${(err as Error).message}`, secrets), {
      cause: err,
    });
  }
  const text = await res.text();
  if (!res.ok)
    throw new EmbeddingError(
      scrub(`embedding endpoint ${url} answered HTTP ${res.status}: ${text.slice(0, 300)}`, secrets),
    );
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new EmbeddingError(`embedding endpoint ${url} returned malformed JSON`, { cause: err });
  }
}

function checkVectors(vectors: unknown, count: number, source: string): number[][] {
  if (
    !Array.isArray(vectors) ||
    vectors.length !== count ||
    !vectors.every((v) => Array.isArray(v) && v.every(Number.isFinite))
  ) {
    throw new EmbeddingError(
      `${source} returned ${Array.isArray(vectors) ? vectors.length : 'no'} vectors for ${count} texts`,
    );
  }
  return vectors as number[][];
}

/** OpenAI's POST /v1/embeddings (also vLLM, LocalAI, Ollama's /v1). */
export class OpenAIEmbeddingFunction implements EmbeddingFunction {
  readonly name = 'flotilla-openai';

  constructor(private readonly opts: { url: string; model: string; apiKey?: string }) {}

  async generate(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    const headers: Record<string, string> = this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {};
    const json = (await postJson(
      apiUrl(this.opts.url, '/embeddings'),
      { model: this.opts.model, input: texts },
      headers,
      this.opts.apiKey ? [this.opts.apiKey] : [],
    )) as { data?: { index?: number; embedding?: unknown }[] };
    // The API may answer out of order; `index` is the truth.
    const data = [...(json.data ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    return checkVectors(
      data.map((d) => d.embedding),
      texts.length,
      'openai embeddings',
    );
  }
}

/** Ollama's native POST /api/embed (batch input). */
export class OllamaEmbeddingFunction implements EmbeddingFunction {
  readonly name = 'flotilla-ollama';

  constructor(private readonly opts: { url: string; model: string }) {}

  async generate(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    const json = (await postJson(
      `${this.opts.url.replace(/\/+$/, '')}/api/embed`,
      { model: this.opts.model, input: texts },
      {},
      [],
    )) as {
      embeddings?: unknown;
    };
    return checkVectors(json.embeddings, texts.length, 'ollama /api/embed');
  }
}

/**
 * Chroma's default embedding (all-MiniLM-L6-v2 via @chroma-core/default-embed), loaded on first
 * use because the package is optional and downloads its model at run time.
 */
class LazyDefaultEmbeddingFunction implements EmbeddingFunction {
  readonly name = 'flotilla-default';
  private loaded: Promise<EmbeddingFunction> | undefined;

  private load(): Promise<EmbeddingFunction> {
    // A variable specifier keeps TypeScript and bundlers from insisting the optional package exists.
    const specifier = '@chroma-core/default-embed';
    this.loaded ??= import(specifier).then(
      (mod: { DefaultEmbeddingFunction: new () => EmbeddingFunction }) => new mod.DefaultEmbeddingFunction(),
      (err: unknown) => {
        this.loaded = undefined;
        throw new EmbeddingUnavailableError(
          'MEMORY_EMBEDDING=default needs the optional package @chroma-core/default-embed (pnpm add @chroma-core/default-embed); or use MEMORY_EMBEDDING=hash',
          { cause: err },
        );
      },
    );
    return this.loaded;
  }

  async generate(texts: string[]): Promise<number[][]> {
    return (await this.load()).generate(texts);
  }
}

const EMBEDDING_DEFAULTS = {
  openai: { url: 'https://api.openai.com', model: 'text-embedding-3-small' },
  ollama: { url: 'http://127.0.0.1:11434', model: 'all-minilm' },
} as const;

/** The embedding function MEMORY_EMBEDDING and its companions describe. */
export function createEmbeddingFunction(config: Partial<MemoryConfig> = {}): EmbeddingFunction {
  switch (config.MEMORY_EMBEDDING ?? 'hash') {
    case 'hash':
      return new HashEmbeddingFunction();
    case 'openai':
      return new OpenAIEmbeddingFunction({
        url: config.MEMORY_EMBEDDING_URL ?? EMBEDDING_DEFAULTS.openai.url,
        model: config.MEMORY_EMBEDDING_MODEL ?? EMBEDDING_DEFAULTS.openai.model,
        apiKey: config.MEMORY_EMBEDDING_API_KEY,
      });
    case 'ollama':
      return new OllamaEmbeddingFunction({
        url: config.MEMORY_EMBEDDING_URL ?? EMBEDDING_DEFAULTS.ollama.url,
        model: config.MEMORY_EMBEDDING_MODEL ?? EMBEDDING_DEFAULTS.ollama.model,
      });
    case 'default':
      return new LazyDefaultEmbeddingFunction();
  }
}
