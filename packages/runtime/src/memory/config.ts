import { z } from 'zod';
import { envField, secret } from '../config/index.js';

/**
 * Memory settings services merge into their config (`...memoryConfigSchema.shape`). Defaults:
 *
 * | variable                 | default        | why |
 * |--------------------------|----------------|-----|
 * | CHROMA_URL               | unset          | no Chroma, no memory: services run without it |
 * | CHROMA_TOKEN             | unset (secret) | sent as `Authorization: Bearer`; Compose's Chroma gate requires it (CHROMA_TOKEN_FILE) |
 * | MEMORY_EMBEDDING         | `hash`         | offline and deterministic; lexical, not semantic |
 * | MEMORY_EMBEDDING_MODEL   | per kind       | openai `text-embedding-3-small`, ollama `all-minilm` |
 * | MEMORY_EMBEDDING_URL     | per kind       | openai `https://api.openai.com`, ollama `http://127.0.0.1:11434` |
 * | MEMORY_EMBEDDING_API_KEY | unset (secret) | openai only; or MEMORY_EMBEDDING_API_KEY_FILE |
 * | MEMORY_COLLECTION_PREFIX | `flotilla`     | lets stacks share one Chroma without sharing memory |
 * | MEMORY_TTL_DAYS          | 30             | long enough to help related tasks, short enough that a planted note fades; reads skip expired records, the orchestrator's cleanup job deletes them |
 *
 * Changing MEMORY_EMBEDDING or its model on an existing Chroma makes old vectors meaningless (or
 * the wrong length): use a new MEMORY_COLLECTION_PREFIX when you switch.
 */
export const memoryConfigSchema = z.object({
  /** Chroma server, e.g. http://chroma:8000. */
  CHROMA_URL: envField.url(['http', 'https']).optional(),
  /** Bearer token Chroma (its authenticating gate in Compose) requires. Never logged. */
  CHROMA_TOKEN: secret(z.string().trim().min(16)).optional(),
  /** hash | openai | ollama | default (Chroma's default model via @chroma-core/default-embed; downloads a model at run time). */
  MEMORY_EMBEDDING: z.enum(['hash', 'openai', 'ollama', 'default']).default('hash'),
  /** Embedding model for openai/ollama. */
  MEMORY_EMBEDDING_MODEL: z.string().trim().min(1).optional(),
  /** Embedding server root for openai/ollama (with or without /v1 for openai). */
  MEMORY_EMBEDDING_URL: envField.url(['http', 'https']).optional(),
  /** Bearer key for the openai embedding endpoint. Never logged. */
  MEMORY_EMBEDDING_API_KEY: secret(z.string().trim().min(1)).optional(),
  /** Prefix of every collection name. */
  MEMORY_COLLECTION_PREFIX: z.string().trim().min(1).max(40).default('flotilla'),
  /** Days a record lives; queries skip older ones and the cleanup job deletes them. */
  MEMORY_TTL_DAYS: envField.positiveNumber().default(30),
});
export type MemoryConfig = z.output<typeof memoryConfigSchema>;
