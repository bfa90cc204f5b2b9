// The runtime's public API. Each concern is a folder whose index.ts names what it exports;
// anything not re-exported here is internal.
export * from './budget/index.js';
export * from './config/index.js';
export { FlotillaError, isTransientError } from './errors.js';
export * from './health/index.js';
export * from './lifecycle/index.js';
export * from './llm/index.js';
export * from './logger/index.js';
export * from './memory/index.js';
export * from './service/index.js';
export * from './telemetry/index.js';
export * from './tools/index.js';
export * from './worker/index.js';
