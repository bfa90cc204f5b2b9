export { type MemoryConfig, memoryConfigSchema } from './config.js';
export {
  type CreateMemoryOptions,
  createMemory,
  DEFAULT_MEMORY_TTL_DAYS,
  type Memory,
  type MemoryDoc,
  type MemoryHit,
  type MemoryLogger,
  type MemoryMetadata,
  type MemoryStore,
  type MemoryWhere,
  type Provenance,
  type Trust,
} from './memory.js';
export {
  MEMORY_DEPENDENCY,
  MEMORY_NAMESPACES,
  type MemoryNamespace,
  MemorySearchHit,
  memorySearchTool,
  memoryWriteTool,
} from './tools.js';
