export { freePort } from './ports.js';
export { type RunningProcess, startProcess, stopAll } from './process.js';
export { chromaReachable, redisReachable, type ServiceHandle, startChroma, startRedis } from './services.js';
export { waitFor } from './wait.js';

import { randomUUID } from 'node:crypto';

/** A queue prefix no other test file shares, as BullMQ's own tests do. */
export const uniquePrefix = (name = 'test') => `${name}-${randomUUID().slice(0, 8)}`;
