import type { Redis } from 'ioredis';

/**
 * Appends an event and refreshes the stream's TTL in one EVALSHA: ioredis' MULTI machinery costs
 * more client CPU than the commands themselves (pnpm bench). Workers batch theirs (RunBook).
 */
const APPEND_EVENT = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return id`;

export interface FlotillaCommands {
  flotillaAppendEvent(eventsKey: string, json: string, ttlSeconds: number, maxLen: number): Promise<string>;
}

/** The connection with flotilla's scripts defined on it (once per connection; ioredis caches the SHA). */
export function withScripts(redis: Redis): Redis & FlotillaCommands {
  const r = redis as Redis & Partial<FlotillaCommands>;
  if (typeof r.flotillaAppendEvent !== 'function') {
    redis.defineCommand('flotillaAppendEvent', { numberOfKeys: 1, lua: APPEND_EVENT });
  }
  return r as Redis & FlotillaCommands;
}
