export { type MemoryConfig, memoryConfigSchema } from './config.js';
export {
  type CreateMemoryOptions,
  createMemory,
  type Memory,
  type MemoryDoc,
  type MemoryHit,
  type MemoryLogger,
  type MemoryMetadata,
  type MemoryWhere,
} from './memory.js';
