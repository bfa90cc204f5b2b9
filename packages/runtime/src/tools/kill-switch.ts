import { redisKeys } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import picomatch from 'picomatch';
import type { SideEffects, ToolLog } from './define.js';

/** What the kill switch stops. */
export interface KillSwitchState {
  /** Every tool. */
  global: boolean;
  /** Every tool with sideEffects 'write'. */
  noWrites: boolean;
  /** Tool names (globs) stopped one by one. */
  tools: string[];
}

export interface KillSwitchOptions {
  /** Command connection: reads and writes the state hash. Not closed by close(). */
  redis: Redis;
  /** A dedicated connection for SUBSCRIBE (e.g. `redis.duplicate()`). The kill switch owns it: close() quits it. */
  subscriber: Redis;
  /** Key prefix (QUEUE_PREFIX). */
  prefix: string;
  /**
   * This process's floor, usually the KILL_SWITCH env var ("all" | "writes" | "toolA,toolB"; tokens may
   * be combined: "writes,http.*"). It is in force from the first call, before Redis is read, and is
   * OR-ed with the shared state; clearing the shared state does not lift it. It is deliberately not
   * written to Redis: one container's env must not switch off tools fleet-wide. Default: nothing.
   */
  initial?: string | Partial<KillSwitchState>;
  log?: ToolLog;
  /** Safety-net re-read of the shared state, in ms, for pub/sub messages missed while disconnected. Default 5000. */
  refreshMs?: number;
  /**
   * After this long without a successful read of the shared state (Redis unreachable, or refusing
   * this user), every tool is blocked until a read succeeds again. Default three refresh periods.
   */
  staleAfterMs?: number;
  /** Clock, for tests of staleness. Default Date.now. */
  now?: () => number;
}

export interface KillSwitch {
  /**
   * Whether a call to this tool must be refused now: the state says so, or the state is stale (see
   * `staleAfterMs`). Synchronous: it reads local state only.
   */
  blocks(tool: string, sideEffects: SideEffects): boolean;
  /** Whether the shared state was read successfully within `staleAfterMs`. */
  fresh(): boolean;
  /** The state in force here: the shared state OR-ed with this process's floor. */
  state(): KillSwitchState;
  /** Changes the shared state for every replica (fields left out keep their value) and applies it here at once. */
  set(patch: Partial<KillSwitchState>): Promise<KillSwitchState>;
  /** Re-reads the shared state now. */
  refresh(): Promise<KillSwitchState>;
  /** Stops listening and quits the subscriber connection. Idempotent. */
  close(): Promise<void>;
}

/** Parses the KILL_SWITCH env format: comma-separated "all", "writes", or tool names/globs. */
export function parseKillSwitch(text: string | undefined): KillSwitchState {
  const state: KillSwitchState = { global: false, noWrites: false, tools: [] };
  for (const token of (text ?? '').split(',').map((t) => t.trim())) {
    if (!token) continue;
    if (token === 'all') state.global = true;
    else if (token === 'writes') state.noWrites = true;
    else state.tools.push(token);
  }
  return state;
}

const fromHash = (h: Record<string, string>): KillSwitchState => ({
  global: h.global === '1',
  noWrites: h.noWrites === '1',
  tools: (h.tools ?? '').split(',').filter(Boolean),
});

/** Reads the shared kill switch state (fields: global, noWrites as "1"/"0"; tools as a comma list). */
export async function readKillSwitch(redis: Redis, prefix: string): Promise<KillSwitchState> {
  return fromHash(await redis.hgetall(redisKeys(prefix).killSwitch));
}

/** Who changed the kill switch and why: kept on the state and appended to the operator actions stream. */
export interface KillSwitchChange {
  /** The operator (an admin key's name). */
  by: string;
  reason: string;
}

/** The shared state with its last recorded change (absent when no change named its author). */
export interface KillSwitchRecord extends KillSwitchState {
  lastChange: (KillSwitchChange & { at: string }) | null;
}

/** Operator actions kept in the stream; older ones are trimmed (approximately, as XADD MAXLEN ~ does). */
export const OPERATOR_ACTIONS_MAX_LEN = 10_000;

/**
 * Writes the shared state and announces it, in one MULTI so no replica can read the announcement
 * before the write. For operators' tools and tests as well as KillSwitch.set. With `change`, who
 * and why are stored beside the state and appended to the operator actions stream in the same
 * MULTI, so no change is in force without its record. Returns the state after the write.
 */
export async function setKillSwitch(
  redis: Redis,
  prefix: string,
  patch: Partial<KillSwitchState>,
  change?: KillSwitchChange,
): Promise<KillSwitchRecord> {
  const keys = redisKeys(prefix);
  const fields: Record<string, string> = {};
  if (patch.global !== undefined) fields.global = patch.global ? '1' : '0';
  if (patch.noWrites !== undefined) fields.noWrites = patch.noWrites ? '1' : '0';
  if (patch.tools !== undefined)
    fields.tools = patch.tools
      .map((t) => t.trim())
      .filter(Boolean)
      .join(',');
  if (Object.keys(fields).length === 0) return recordOf(await redis.hgetall(keys.killSwitch));
  const tx = redis.multi();
  if (change) {
    const at = new Date().toISOString();
    tx.hset(keys.killSwitch, { ...fields, changedBy: change.by, reason: change.reason, changedAt: at });
    tx.xadd(
      keys.operatorActions,
      'MAXLEN',
      '~',
      OPERATOR_ACTIONS_MAX_LEN,
      '*',
      'action',
      'kill_switch',
      'by',
      change.by,
      'reason',
      change.reason,
      'patch',
      JSON.stringify(patch),
      'at',
      at,
    );
  } else {
    tx.hset(keys.killSwitch, fields);
  }
  tx.publish(keys.killSwitchChannel, JSON.stringify(fields)).hgetall(keys.killSwitch);
  const replies = (await tx.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
  return recordOf(replies[replies.length - 1]?.[1] as Record<string, string>);
}

/** The shared state with who changed it last, as the operator API shows it. */
export async function readKillSwitchRecord(redis: Redis, prefix: string): Promise<KillSwitchRecord> {
  return recordOf(await redis.hgetall(redisKeys(prefix).killSwitch));
}

const recordOf = (h: Record<string, string>): KillSwitchRecord => ({
  ...fromHash(h),
  lastChange:
    h.changedBy !== undefined && h.reason !== undefined && h.changedAt !== undefined
      ? { by: h.changedBy, reason: h.reason, at: h.changedAt }
      : null,
});

const normalize = (s: Partial<KillSwitchState> = {}): KillSwitchState => ({
  global: s.global === true,
  noWrites: s.noWrites === true,
  tools: s.tools ?? [],
});

const matcher = (globs: string[]): ((tool: string) => boolean) =>
  globs.length ? picomatch(globs, { dot: true }) : () => false;

const merge = (a: KillSwitchState, b: KillSwitchState): KillSwitchState => ({
  global: a.global || b.global,
  noWrites: a.noWrites || b.noWrites,
  tools: [...new Set([...a.tools, ...b.tools])],
});

/**
 * A replica's view of the kill switch. The state lives in a Redis hash; a change is published on a
 * channel and every replica re-reads the hash when the message arrives (well under a second). Reading
 * the hash rather than trusting the message keeps replicas right even if messages arrive out of
 * order. A periodic re-read, and one on every (re)subscription, catches messages missed while a
 * connection was down.
 *
 * It fails closed: an operator who flips it while this replica cannot reach Redis would otherwise
 * never be heard, so once the last good read is older than `staleAfterMs` every call is refused
 * (stop reason `kill_switch`) until a read succeeds again.
 */
export async function createKillSwitch(options: KillSwitchOptions): Promise<KillSwitch> {
  const { redis, subscriber, prefix, log, refreshMs = 5000, now = Date.now } = options;
  const staleAfterMs = options.staleAfterMs ?? 3 * refreshMs;
  const keys = redisKeys(prefix);
  const floor = typeof options.initial === 'string' ? parseKillSwitch(options.initial) : normalize(options.initial);

  let effective = floor;
  let matchTool = matcher(floor.tools);
  let readAt = Number.NEGATIVE_INFINITY;
  let staleLogged = false;

  const apply = (next: KillSwitchState) => {
    const merged = merge(floor, next);
    if (JSON.stringify(merged) !== JSON.stringify(effective)) {
      log?.warn({ killSwitch: merged }, 'kill switch changed');
    }
    effective = merged;
    matchTool = matcher(merged.tools);
    return effective;
  };

  const refresh = async () => {
    const next = await readKillSwitch(redis, prefix);
    readAt = now();
    if (staleLogged) log?.warn({ killSwitch: merge(floor, next) }, 'kill switch state is fresh again');
    staleLogged = false;
    return apply(next);
  };
  const fresh = () => now() - readAt <= staleAfterMs;
  const refreshQuietly = () =>
    void refresh().catch((err: Error) => log?.warn({ err: { message: err.message } }, 'kill switch refresh failed'));

  const onMessage = (channel: string) => {
    if (channel === keys.killSwitchChannel) refreshQuietly();
  };
  subscriber.on('message', onMessage);
  // ioredis re-subscribes after a reconnect; anything published meanwhile is only in the hash.
  subscriber.on('ready', refreshQuietly);
  await subscriber.subscribe(keys.killSwitchChannel);
  await refresh();

  const timer = setInterval(refreshQuietly, refreshMs);
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    blocks(tool, sideEffects) {
      if (!fresh()) {
        if (!staleLogged) log?.warn({ staleAfterMs }, 'kill switch state is stale: refusing every tool call');
        staleLogged = true;
        return true;
      }
      return effective.global || (effective.noWrites && sideEffects === 'write') || matchTool(tool);
    },
    fresh,
    state: () => ({ ...effective, tools: [...effective.tools] }),
    async set(patch) {
      await setKillSwitch(redis, prefix, patch);
      // Read back rather than patch locally: another replica may have changed other fields meanwhile.
      return refresh();
    },
    refresh,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        subscriber.off('message', onMessage);
        subscriber.off('ready', refreshQuietly);
        await subscriber.quit().catch(() => subscriber.disconnect());
      })();
      return closing;
    },
  };
}
