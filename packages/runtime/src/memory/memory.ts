import { createHash } from 'node:crypto';
import { TenantId } from '@flotilla/contracts';
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

/**
 * Where a record came from. Every record carries it and every hit returns it, so a model (or a
 * person) reading a hit can tell which task, which worker and which tool put it there.
 */
export interface Provenance {
  taskId: string;
  subtaskId: string;
  /** The worker role (or `orchestrator`) whose run wrote it. */
  role: string;
  /** The tool that wrote it (`notes.write`, `memory.write`). */
  tool: string;
  /** The page (or pages, space-separated) the text derives from, as the writer reported it. */
  sourceUrl?: string;
  /** Epoch ms the record was written; set by memory unless the writer brings one (imports, tests). */
  createdAt: number;
}

/**
 * How far a hit may be trusted. Always `untrusted` today: everything in memory was written by a
 * model or a tool from text outside the operator's control (fetched pages, subtask outputs), so
 * it is data to weigh, never an instruction to follow. A field rather than an assumption, so
 * readers can switch on it and operator-curated records can be told apart later.
 */
export type Trust = 'untrusted';

export interface MemoryDoc {
  /** Stable id; default: derived from the text, so adding the same text twice stores it once. */
  id?: string;
  text: string;
  /** Required: a record nobody can trace is not kept. `createdAt` defaults to now. */
  provenance: Omit<Provenance, 'createdAt'> & { createdAt?: number };
  /** Extra labels (e.g. a goal). Provenance keys, `tenant` and `trust` are memory's own and win. */
  metadata?: MemoryMetadata;
}

export interface MemoryHit {
  id: string;
  text: string;
  trust: Trust;
  provenance: Provenance;
  /** The record's extra labels (MemoryDoc.metadata). */
  metadata: MemoryMetadata;
  /** Distance in the collection's space (cosine for the built-in embeddings): smaller is closer. */
  distance: number;
}

/**
 * One tenant's long-term memory: one Chroma collection per tenant and namespace. Nothing here can
 * name another tenant's collection, and every read also filters on the tenant and on expiry, so a
 * record past MEMORY_TTL_DAYS is never returned even before the cleanup job deletes it.
 */
export interface Memory {
  readonly tenant: string;
  /**
   * Upserts documents and returns their ids, in order. Idempotent (at-least-once safe): a redelivered
   * job writes the same ids again.
   */
  add(namespace: string, docs: MemoryDoc[]): Promise<string[]>;
  /** The `n` (default 5) unexpired documents nearest to `text`, closest first, optionally filtered by metadata. */
  query(namespace: string, text: string, options?: { n?: number; where?: MemoryWhere }): Promise<MemoryHit[]>;
  /** Deletes documents whose `createdAt` is older than `olderThanMs` ago; returns how many went. */
  cleanup(namespace: string, options: { olderThanMs: number }): Promise<number>;
  /** Documents in a namespace, expired ones not yet cleaned up included (0 when it does not exist yet). */
  count(namespace: string): Promise<number>;
  /** Drops a namespace and everything in it; a missing namespace is not an error. */
  deleteNamespace(namespace: string): Promise<void>;
}

/** Every tenant's memory in one Chroma, under one collection prefix. What services hold. */
export interface MemoryStore {
  /** The tenant's memory. Throws TypeError for a name that is not a TenantId. */
  forTenant(tenant: string): Memory;
  /**
   * Deletes the records older than the TTL in every tenant's collection under this prefix (the
   * cleanup job). Collections other prefixes or older versions made are left alone.
   */
  cleanupExpired(): Promise<{ collections: number; deleted: number }>;
  /** Chroma heartbeat, for readiness checks; rejects with MemoryError when Chroma is unreachable. */
  ping(): Promise<void>;
  /** How long a record lives (MEMORY_TTL_DAYS), ms. */
  readonly ttlMs: number;
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
  /** How long records live, days. Default MEMORY_TTL_DAYS, else 30. */
  ttlDays?: number;
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

/** Metadata keys memory owns; a writer's extra labels cannot set them. */
const OWN_KEYS = ['tenant', 'trust', 'taskId', 'subtaskId', 'role', 'tool', 'sourceUrl', 'createdAt'] as const;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function toHit(id: string, text: string, raw: MemoryMetadata, distance: number): MemoryHit {
  const metadata: MemoryMetadata = {};
  for (const [k, v] of Object.entries(raw)) if (!(OWN_KEYS as readonly string[]).includes(k)) metadata[k] = v;
  const provenance: Provenance = {
    taskId: str(raw.taskId),
    subtaskId: str(raw.subtaskId),
    role: str(raw.role),
    tool: str(raw.tool),
    createdAt: typeof raw.createdAt === 'number' ? raw.createdAt : 0,
  };
  if (typeof raw.sourceUrl === 'string') provenance.sourceUrl = raw.sourceUrl;
  // Whatever the stored field says, nothing in memory is trusted (see Trust).
  return { id, text, trust: 'untrusted', provenance, metadata, distance };
}

/** Records live this long unless MEMORY_TTL_DAYS says otherwise. */
export const DEFAULT_MEMORY_TTL_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;
/** Collections examined per listCollections call of the cleanup job. */
const LIST_PAGE = 100;

/** Chroma-backed memory. Nothing is cached but collection handles: every replica sees the same memory. */
export function createMemory(options: CreateMemoryOptions): MemoryStore {
  const auth: Record<string, string> = options.CHROMA_TOKEN ? { authorization: `Bearer ${options.CHROMA_TOKEN}` } : {};
  const client = new ChromaClient(clientArgs(options.url, { ...auth, ...options.headers }));
  const embeddingFunction = options.embedding ?? createEmbeddingFunction(options);
  const prefix = options.collectionPrefix ?? options.MEMORY_COLLECTION_PREFIX ?? 'flotilla';
  const ttlMs = (options.ttlDays ?? options.MEMORY_TTL_DAYS ?? DEFAULT_MEMORY_TTL_DAYS) * DAY_MS;
  const collections = new Map<string, Promise<Collection>>();
  // TenantId has no '/', so `<tenant>/<namespace>` is unambiguous, and the '/' makes collectionName
  // append a hash of the whole, so no two (tenant, namespace) pairs can share a collection.
  const nameOf = (tenant: string, namespace: string) => collectionName(prefix, `${tenant}/${namespace}`);

  const collection = (tenant: string, namespace: string): Promise<Collection> => {
    const name = nameOf(tenant, namespace);
    let handle = collections.get(name);
    if (!handle) {
      handle = client.getOrCreateCollection({
        name,
        embeddingFunction,
        // What the cleanup job recognises its own collections by.
        metadata: { flotillaPrefix: prefix, tenant, namespace: namespace.slice(0, 200) },
      });
      // A failed lookup must not poison the cache (Chroma may just have been restarting).
      handle.then(
        () => options.log?.debug({ tenant, namespace, collection: name }, 'memory collection ready'),
        () => collections.delete(name),
      );
      collections.set(name, handle);
    }
    return handle;
  };

  const wrap = async <T>(operation: string, scope: string | undefined, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof MemoryError) throw err;
      // A collection deleted elsewhere (another replica's deleteNamespace) leaves a stale handle.
      if (scope !== undefined && err instanceof ChromaNotFoundError) collections.delete(scope);
      const where = scope === undefined ? '' : ` in ${scope}`;
      const retryable =
        err instanceof ChromaServerError || err instanceof ChromaConnectionError || err instanceof ChromaRateLimitError;
      throw new MemoryError(operation, `memory ${operation}${where} failed: ${(err as Error).message}`, {
        cause: err,
        retryable,
      });
    }
  };

  const deleteOlderThan = async (c: Collection, cutoff: number): Promise<number> => {
    const before = await c.count();
    const res = await c.delete({ where: { createdAt: { $lt: cutoff } } });
    // Older servers do not report `deleted`; the count difference is close enough for them.
    return res?.deleted ?? Math.max(0, before - (await c.count()));
  };

  const forTenant = (tenant: string): Memory => {
    const checked = TenantId.safeParse(tenant);
    if (!checked.success) throw new TypeError(`memory tenant ${JSON.stringify(tenant).slice(0, 80)} is not a TenantId`);
    return {
      tenant,
      add: (namespace, docs) =>
        wrap('add', nameOf(tenant, namespace), async () => {
          if (docs.length === 0) return [];
          const now = Date.now();
          const ids = docs.map((d) => d.id ?? contentId(d.text));
          // Last write wins inside one batch, as Chroma would reject duplicate ids outright.
          const unique = new Map(docs.map((d, i) => [ids[i] as string, d]));
          const c = await collection(tenant, namespace);
          await c.upsert({
            ids: [...unique.keys()],
            documents: [...unique.values()].map((d) => d.text),
            metadatas: [...unique.values()].map(({ metadata, provenance: p }) => {
              const own: MemoryMetadata = {
                tenant,
                trust: 'untrusted',
                taskId: p.taskId,
                subtaskId: p.subtaskId,
                role: p.role,
                tool: p.tool,
                createdAt: p.createdAt ?? now,
              };
              if (p.sourceUrl) own.sourceUrl = p.sourceUrl.slice(0, 2000);
              return { ...metadata, ...own };
            }),
          });
          return ids;
        }),
      query: (namespace, text, { n = 5, where } = {}) =>
        wrap('query', nameOf(tenant, namespace), async () => {
          const c = await collection(tenant, namespace);
          // The tenant filter is redundant with the collection; it is there so that a naming bug
          // would return nothing rather than someone else's records.
          const scoped: Where[] = [{ tenant }, { createdAt: { $gte: Date.now() - ttlMs } }];
          const res = await c.query({
            queryTexts: [text],
            nResults: n,
            where: { $and: where ? [...scoped, where] : scoped },
            include: ['documents', 'metadatas', 'distances'] as never,
          });
          const ids = res.ids[0] ?? [];
          return ids.map((id, i) =>
            toHit(
              id,
              res.documents[0]?.[i] ?? '',
              scalarMetadata(res.metadatas[0]?.[i]),
              res.distances[0]?.[i] ?? Number.POSITIVE_INFINITY,
            ),
          );
        }),
      cleanup: (namespace, { olderThanMs }) =>
        wrap('cleanup', nameOf(tenant, namespace), async () => {
          const deleted = await deleteOlderThan(await collection(tenant, namespace), Date.now() - olderThanMs);
          options.log?.debug({ tenant, namespace, deleted, olderThanMs }, 'memory cleanup');
          return deleted;
        }),
      count: (namespace) =>
        wrap('count', nameOf(tenant, namespace), async () => (await collection(tenant, namespace)).count()),
      deleteNamespace: (namespace) =>
        wrap('deleteNamespace', nameOf(tenant, namespace), async () => {
          const name = nameOf(tenant, namespace);
          collections.delete(name);
          try {
            await client.deleteCollection({ name });
          } catch (err) {
            if (!(err instanceof ChromaNotFoundError)) throw err;
          }
        }),
    };
  };

  return {
    ttlMs,
    forTenant,
    ping: () =>
      wrap('ping', undefined, async () => {
        await client.heartbeat();
      }),
    cleanupExpired: () =>
      wrap('cleanupExpired', undefined, async () => {
        const cutoff = Date.now() - ttlMs;
        let examined = 0;
        let cleaned = 0;
        let deleted = 0;
        // Pages by offset: a delete removes records, never collections, so the listing stays stable.
        for (let offset = 0; ; offset += LIST_PAGE) {
          const page = await client.listCollections({ limit: LIST_PAGE, offset });
          examined += page.length;
          for (const c of page) {
            if (c.metadata?.flotillaPrefix !== prefix) continue;
            cleaned++;
            deleted += await deleteOlderThan(c, cutoff);
          }
          if (page.length < LIST_PAGE) break;
        }
        options.log?.debug({ examined, collections: cleaned, deleted }, 'memory cleanup');
        return { collections: cleaned, deleted };
      }),
  };
}
