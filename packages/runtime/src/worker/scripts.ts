import type { Redis } from 'ioredis';

/** A Lua script run on a connection with its keys and arguments. */
export type LuaScript<R = unknown> = (redis: Redis, keys: string[], args: (string | number)[]) => Promise<R>;

/**
 * A Lua script as an ioredis command, defined on first use per connection: ioredis runs it by
 * hash (EVALSHA) and falls back to EVAL when the server doesn't know it yet (first use, or after a
 * Redis restart flushed its script cache). `name` must be unique per script.
 */
export function luaScript<R = unknown>(name: string, lua: string): LuaScript<R> {
  return (redis, keys, args) => {
    const commands = redis as unknown as Record<string, unknown>;
    if (typeof commands[name] !== 'function') redis.defineCommand(name, { lua });
    const command = commands[name] as (...keysAndArgs: (string | number)[]) => Promise<R>;
    return command.call(redis, keys.length, ...keys, ...args);
  };
}
