// Starts one real Redis and one real Chroma for the whole run (or reuses REDIS_URL / CHROMA_URL),
// so integration tests talk to the real thing and unit tests pay nothing.
import { type ServiceHandle, startChroma, startRedis } from '../packages/devkit/src/index.js';

let handles: ServiceHandle[] = [];

export default async function setup() {
  if (!process.env.REDIS_URL || !process.env.CHROMA_URL) {
    const [redis, chroma] = await Promise.all([startRedis(), startChroma()]);
    handles = [redis, chroma];
    // Set on the main process so every project and pool worker after this inherits them.
    process.env.REDIS_URL = redis.url;
    process.env.CHROMA_URL = chroma.url;
  }
  return async () => {
    await Promise.all(handles.map((h) => h.stop()));
    handles = [];
  };
}
