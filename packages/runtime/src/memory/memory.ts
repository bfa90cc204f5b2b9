import { createHash } from 'node:crypto';
import {
  ChromaClient,
  ChromaConnectionError,
  ChromaNotFoundError,
  ChromaRateLimitError,
  ChromaServerError,
  type Collection,
  type EmbeddingFunction,
  type Metadata,
  type Where,
} from 'chromadb';
import type { MemoryConfig } from './config.js';
import { createEmbeddingFunction } from './embeddings.js';
import { MemoryError } from './errors.js';

/** Scalar metadata values, the subset Chroma can filter on. */
export type MemoryMetadata = Record<string, string | number | boolean | null>;
/** A Chroma metadata filter, e.g. `{ taskId: 't1' }` or `{ $and: [{ a: 1 }, { createdAt: { $gt: 0 } }] }`. */
export type MemoryWhere = Where;

export interface MemoryDoc {
  /** Stable id; default: derived from the text, so adding the same text twice stores it once. */
  id?: string;
  text: string;
  metadata?: MemoryMetadata;
}

export interface MemoryHit {
  id: string;
  text: string;
  metadata: MemoryMetadata;
  /** Distance in the collection's space (cosine for the built-in embeddings): smaller is closer. */
  distance: number;
}

/** Long-term memory: one Chroma collection per namespace. Containers stay stateless; all of it lives in Chroma. */
export interface Memory {
  /**
   * Upserts documents and returns their ids, in order. Idempotent (at-least-once safe): a redelivered
   * job writes the same ids again. Each document gets a `createdAt` (epoch ms) unless it brings one.
   */
  add(namespace: string, docs: MemoryDoc[]): Promise<string[]>;
  /** The `n` (default 5) documents nearest to `text`, closest first, optionally filtered by metadata. */
  query(namespace: string, text: string, options?: { n?: number; where?: MemoryWhere }): Promise<MemoryHit[]>;
  /** Deletes documents whose `createdAt` is older than `olderThanMs` ago; returns how many went. */
  cleanup(namespace: string, options: { olderThanMs: number }): Promise<number>;
  /** Documents in a namespace (0 when it does not exist yet). */
  count(namespace: string): Promise<number>;
  /** Chroma heartbeat, for readiness checks; rejects with MemoryError when Chroma is unreachable. */
  ping(): Promise<void>;
  /** Drops a namespace and everything in it; a missing namespace is not an error. */
  deleteNamespace(namespace: string): Promise<void>;
}

/** The few logger methods memory uses; a pino logger fits. */
export interface MemoryLogger {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface CreateMemoryOptions extends Partial<MemoryConfig> {
  /** Chroma server URL, e.g. http://chroma:8000. */
  url: string;
  /** Embedding function; default: the one MEMORY_EMBEDDING (and its companions) describe, else `hash`. */
  embedding?: EmbeddingFunction;
  /** Prefix of every collection name. Default MEMORY_COLLECTION_PREFIX, else 'flotilla'. */
  collectionPrefix?: string;
  /** Extra headers for Chroma, e.g. `{ 'x-chroma-token': ... }`. */
  headers?: Record<string, string>;
  log?: MemoryLogger;
}

/** Chroma name rules: 3-512 chars of [a-zA-Z0-9._-], alphanumeric at both ends, no "..", not an IPv4 address. */
const MAX_NAME = 63; // Chroma 0.x allowed 63; staying under it keeps names valid on old servers too.

/**
 * A valid, collision-free collection name for `prefix` + `namespace`. When sanitising changed
 * the namespace, a short hash of the original is appended so "a/b" and "a-b" stay apart.
 */
export function collectionName(prefix: string, namespace: string): string {
  const raw = `${prefix}-${namespace}`;
  let name = raw
    .replace(/[^a-zA-Z0-9._-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^a-zA-Z0-9]+|[^a-zA-Z0-9]+$/g, '');
  const changed = name !== raw;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, 8);
  if (changed || name.length > MAX_NAME || name.length < 3) {
    name = `${name.slice(0, MAX_NAME - 9).replace(/[^a-zA-Z0-9]+$/, '')}-${hash}`.replace(/^-/, 'ns-');
  }
  return name;
}

/** Content-derived id: the same text always maps to the same id. */
export function contentId(text: string): string {
  return `doc-${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
}

function clientArgs(url: string, headers?: Record<string, string>) {
  const u = new URL(url);
  const ssl = u.protocol === 'https:';
  return { host: u.hostname, port: u.port ? Number(u.port) : ssl ? 443 : 80, ssl, headers };
}

function scalarMetadata(m: Metadata | null | undefined): MemoryMetadata {
  const out: MemoryMetadata = {};
  for (const [k, v] of Object.entries(m ?? {})) {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** Chroma-backed memory. Nothing is cached but collection handles: every replica sees the same memory. */
export function createMemory(options: CreateMemoryOptions): Memory {
  const auth: Record<string, string> = options.CHROMA_TOKEN ? { authorization: `Bearer ${options.CHROMA_TOKEN}` } : {};
  const client = new ChromaClient(clientArgs(options.url, { ...auth, ...options.headers }));
  const embeddingFunction = options.embedding ?? createEmbeddingFunction(options);
  const prefix = options.collectionPrefix ?? options.MEMORY_COLLECTION_PREFIX ?? 'flotilla';
  const collections = new Map<string, Promise<Collection>>();

  const collection = (namespace: string): Promise<Collection> => {
    const name = collectionName(prefix, namespace);
    let handle = collections.get(name);
    if (!handle) {
      handle = client.getOrCreateCollection({
        name,
        embeddingFunction,
        metadata: { namespace: namespace.slice(0, 200) },
      });
      // A failed lookup must not poison the cache (Chroma may just have been restarting).
      handle.then(
        () => options.log?.debug({ namespace, collection: name }, 'memory collection ready'),
        () => collections.delete(name),
      );
      collections.set(name, handle);
    }
    return handle;
  };

  const wrap = async <T>(operation: string, namespace: string | undefined, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof MemoryError) throw err;
      // A collection deleted elsewhere (another replica's deleteNamespace) leaves a stale handle.
      if (namespace !== undefined && err instanceof ChromaNotFoundError)
        collections.delete(collectionName(prefix, namespace));
      const where = namespace === undefined ? '' : ` in namespace ${JSON.stringify(namespace)}`;
      const retryable =
        err instanceof ChromaServerError || err instanceof ChromaConnectionError || err instanceof ChromaRateLimitError;
      throw new MemoryError(operation, `memory ${operation}${where} failed: ${(err as Error).message}`, {
        cause: err,
        retryable,
      });
    }
  };

  return {
    add: (namespace, docs) =>
      wrap('add', namespace, async () => {
        if (docs.length === 0) return [];
        const now = Date.now();
        const ids = docs.map((d) => d.id ?? contentId(d.text));
        // Last write wins inside one batch, as Chroma would reject duplicate ids outright.
        const unique = new Map(docs.map((d, i) => [ids[i] as string, d]));
        const c = await collection(namespace);
        await c.upsert({
          ids: [...unique.keys()],
          documents: [...unique.values()].map((d) => d.text),
          metadatas: [...unique.values()].map((d) => ({
            ...d.metadata,
            createdAt: typeof d.metadata?.createdAt === 'number' ? d.metadata.createdAt : now,
          })),
        });
        return ids;
      }),

    query: (namespace, text, { n = 5, where } = {}) =>
      wrap('query', namespace, async () => {
        const c = await collection(namespace);
        const res = await c.query({
          queryTexts: [text],
          nResults: n,
          ...(where ? { where } : {}),
          include: ['documents', 'metadatas', 'distances'] as never,
        });
        const ids = res.ids[0] ?? [];
        return ids.map((id, i) => ({
          id,
          text: res.documents[0]?.[i] ?? '',
          metadata: scalarMetadata(res.metadatas[0]?.[i]),
          distance: res.distances[0]?.[i] ?? Number.POSITIVE_INFINITY,
        }));
      }),

    cleanup: (namespace, { olderThanMs }) =>
      wrap('cleanup', namespace, async () => {
        const c = await collection(namespace);
        const where: Where = { createdAt: { $lt: Date.now() - olderThanMs } };
        const before = await c.count();
        const res = await c.delete({ where });
        // Older servers do not report `deleted`; the count difference is close enough for them.
        const deleted = res?.deleted ?? Math.max(0, before - (await c.count()));
        options.log?.debug({ namespace, deleted, olderThanMs }, 'memory cleanup');
        return deleted;
      }),

    count: (namespace) => wrap('count', namespace, async () => (await collection(namespace)).count()),

    ping: () =>
      wrap('ping', undefined, async () => {
        await client.heartbeat();
      }),

    deleteNamespace: (namespace) =>
      wrap('deleteNamespace', namespace, async () => {
        const name = collectionName(prefix, namespace);
        collections.delete(name);
        try {
          await client.deleteCollection({ name });
        } catch (err) {
          if (!(err instanceof ChromaNotFoundError)) throw err;
        }
      }),
  };
}
