export { type MemoryConfig, memoryConfigSchema } from './config.js';
export {
  createEmbeddingFunction,
  EMBEDDING_DEFAULTS,
  HASH_DIMENSIONS,
  HashEmbeddingFunction,
  OllamaEmbeddingFunction,
  OpenAIEmbeddingFunction,
} from './embeddings.js';
export { EmbeddingError, EmbeddingUnavailableError, MemoryError } from './errors.js';
export {
  type CreateMemoryOptions,
  collectionName,
  contentId,
  createMemory,
  type Memory,
  type MemoryDoc,
  type MemoryHit,
  type MemoryLogger,
  type MemoryMetadata,
  type MemoryWhere,
} from './memory.js';
