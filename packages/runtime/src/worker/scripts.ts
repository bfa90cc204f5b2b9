import type { Redis } from 'ioredis';

/**
 * Lua for the per-job bookkeeping. One EVALSHA instead of a MULTI per step: a worker pays this on
 * every job, and ioredis' MULTI machinery costs more client CPU than the commands themselves
 * (measured by `pnpm bench`).
 */
const APPEND_EVENT = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return id`;

/** Starts a run unless the task was cancelled: ledger +1 and the started event, atomically. */
const START_RUN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 1`;

export interface FlotillaCommands {
  flotillaAppendEvent(eventsKey: string, json: string, ttlSeconds: number, maxLen: number): Promise<string>;
  flotillaStartRun(
    cancelledKey: string,
    runsKey: string,
    eventsKey: string,
    subtaskId: string,
    ttlSeconds: number,
    startedJson: string,
    maxLen: number,
  ): Promise<number>;
}

/** The connection with flotilla's scripts defined on it (once per connection; ioredis caches the SHA). */
export function withScripts(redis: Redis): Redis & FlotillaCommands {
  const r = redis as Redis & Partial<FlotillaCommands>;
  if (typeof r.flotillaAppendEvent !== 'function') {
    redis.defineCommand('flotillaAppendEvent', { numberOfKeys: 1, lua: APPEND_EVENT });
    redis.defineCommand('flotillaStartRun', { numberOfKeys: 3, lua: START_RUN });
  }
  return r as Redis & FlotillaCommands;
}
