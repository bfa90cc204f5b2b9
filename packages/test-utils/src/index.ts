export * from './fake-llm/index.js';
export { type ReceivedSpan, startOtlpReceiver } from './otlp.js';
export { freePort } from './ports.js';
export { type RunningProcess, startProcess, stopAll } from './process.js';
export { type ProxyMode, startTcpProxy, type TcpProxy } from './proxy.js';
export { chromaReachable, redisReachable, type ServiceHandle, startChroma, startRedis } from './services.js';
export { waitFor } from './wait.js';

import { randomUUID } from 'node:crypto';

/** A queue prefix no other test file shares, as BullMQ's own tests do. */
export const uniquePrefix = (name = 'test') => `${name}-${randomUUID().slice(0, 8)}`;

/**
 * URLs of the run's shared Redis and Chroma, which test/global-setup.ts started (or reused)
 * and exported before any test file loaded.
 */
export function testServices(): { redisUrl: string; chromaUrl: string } {
  const redisUrl = process.env.REDIS_URL;
  const chromaUrl = process.env.CHROMA_URL;
  if (!redisUrl || !chromaUrl)
    throw new Error('REDIS_URL/CHROMA_URL unset: run tests through vitest (test/global-setup.ts)');
  return { redisUrl, chromaUrl };
}
