import { TASK_EVENT_FIELD, TERMINAL_TASK_STATUSES } from '@flotilla/contracts';
import { luaScript, STREAM_MAX_LEN } from '@flotilla/runtime/worker';

/** A Lua table literal of the terminal statuses, so the scripts and the contracts cannot disagree. */
const TERMINAL = `{${TERMINAL_TASK_STATUSES.map((s) => `['${s}'] = true`).join(', ')}}`;

/**
 * Creates a task unless its idempotency key (or id) is taken, atomically: the hash, the first
 * event, the key mapping, the sweep's index entries and the owner's index entry appear together or
 * not at all, so two concurrent POSTs with one key make one task, and no task exists that the sweep
 * or a listing cannot find.
 * The owner's index (GET /v1/tasks) holds members `<µs, 16 digits>:<taskId>` with score 0, so text
 * order is time order. The time is Redis's, one clock for every replica. The index's two oldest
 * entries are dropped if their task expired, so it can't outgrow the live tasks while nobody lists
 * (a listing drops what it meets).
 * The owner's open tasks (a sorted set by deadline) bound how many queued and running tasks one
 * tenant may have: members whose task ended or expired are dropped here, when the cap is checked,
 * so no other script has to know the owner. That costs one HGET per open task, at most the cap.
 * KEYS: taskByKey (or the task key when there is no idempotency key), task, events, queuedTasks,
 * openTasks, the owner's task index, the owner's open tasks.
 * ARGV: hasKey ('1'|'0'), taskId, ttlSeconds, eventJson, taskKeyPrefix, createdMs, deadlineMs,
 * maxOpen (0: no cap), field, value, ...
 * Returns [1, taskId] when created, [0, existingTaskId] when the key already names a live task,
 * [-1, openCount] when the owner is at its cap (a replay of a live key still answers [0, ...]).
 */
export const createTaskScript = luaScript(
  'flotillaCreateTask',
  `
local byKey, task, events, queued, open, index, ownerOpen = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local hasKey, taskId, ttl, event, taskPrefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local maxOpen = tonumber(ARGV[8])
if hasKey == '1' then
  local existing = redis.call('GET', byKey)
  if existing and redis.call('EXISTS', taskPrefix .. existing) == 1 then return {0, existing} end
end
if redis.call('EXISTS', task) == 1 then return {0, taskId} end
local live = 0
for _, id in ipairs(redis.call('ZRANGE', ownerOpen, 0, -1)) do
  local status = redis.call('HGET', taskPrefix .. id, 'status')
  if (not status) or (${TERMINAL})[status] then redis.call('ZREM', ownerOpen, id) else live = live + 1 end
end
if maxOpen > 0 and live >= maxOpen then return {-1, tostring(live)} end
redis.call('HSET', task, unpack(ARGV, 9))
redis.call('ZADD', ownerOpen, ARGV[7], taskId)
redis.call('EXPIRE', ownerOpen, ttl)
redis.call('ZADD', queued, ARGV[6], taskId)
redis.call('ZADD', open, ARGV[7], taskId)
redis.call('EXPIRE', task, ttl)
redis.call('XADD', events, 'MAXLEN', '~', ${STREAM_MAX_LEN}, '*', '${TASK_EVENT_FIELD}', event)
redis.call('EXPIRE', events, ttl)
if hasKey == '1' then redis.call('SET', byKey, taskId, 'EX', ttl) end
local t = redis.call('TIME')
redis.call('ZADD', index, 0, string.format('%016d:%s', t[1] * 1000000 + t[2], taskId))
for _, m in ipairs(redis.call('ZRANGE', index, 0, 1)) do
  if redis.call('EXISTS', taskPrefix .. string.sub(m, 18)) == 0 then redis.call('ZREM', index, m) end
end
return {1, taskId}
`,
);

/**
 * Moves a task from one of the allowed statuses to another, sets fields and appends the event, in
 * one step: no reader ever sees a status without its event, and two replicas racing (an
 * aggregation finishing while a cancel lands) cannot both win. The sweep's indexes follow in the
 * same step: a task leaves `queuedTasks` when it leaves `queued`, and `openTasks` when it ends.
 * KEYS: task, events, queuedTasks, openTasks.
 * ARGV: allowedFrom (comma list), to, ttlSeconds, eventJson ('' for none), nowIso, taskId, field, value, ...
 * Returns [1, previousStatus] when applied, [0, currentStatus] when not, [-1, ''] when the task is gone.
 */
export const transitionScript = luaScript(
  'flotillaTransition',
  `
local task, events, queued, open = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local allowed, to, ttl, event, now, taskId = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local status = redis.call('HGET', task, 'status')
if not status then return {-1, ''} end
local ok = false
for s in string.gmatch(allowed, '[^,]+') do
  if s == status then ok = true end
end
if not ok then return {0, status} end
redis.call('HSET', task, 'status', to, 'updatedAt', now)
if #ARGV > 6 then redis.call('HSET', task, unpack(ARGV, 7)) end
if to ~= 'queued' then redis.call('ZREM', queued, taskId) end
if (${TERMINAL})[to] then redis.call('ZREM', open, taskId) end
redis.call('EXPIRE', task, ttl)
if event ~= '' then
  redis.call('XADD', events, 'MAXLEN', '~', ${STREAM_MAX_LEN}, '*', '${TASK_EVENT_FIELD}', event)
  redis.call('EXPIRE', events, ttl)
end
return {1, status}
`,
);

/**
 * The one re-plan: sets the plan and marks the task replanned, unless it is marked already (the
 * first writer wins; a retried aggregation reads the stored plan back). A task hash that expired
 * is not brought back.
 * KEYS: task. ARGV: planJson. Returns the plan now stored, or nil when the task is gone.
 */
export const extendPlanScript = luaScript<string | null>(
  'flotillaExtendPlan',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if redis.call('HSETNX', KEYS[1], 'replanned', '1') == 1 then redis.call('HSET', KEYS[1], 'plan', ARGV[1]) end
return redis.call('HGET', KEYS[1], 'plan')
`,
);

/**
 * One field write to a task hash that still exists. A late writer (a retried planning or
 * aggregation job whose task expired meanwhile) must not bring the hash back: HSET or HINCRBY on a
 * missing key creates it with no expiry, a fragment no sweep reads and nothing ever deletes.
 * KEYS: task. ARGV: 'HSET' | 'HINCRBY' | 'HSETNX', field, value.
 * Returns the command's reply, or nil when the task is gone.
 */
export const writeLiveTaskScript = luaScript<number | null>(
  'flotillaWriteLiveTask',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
return redis.call(ARGV[1], KEYS[1], ARGV[2], ARGV[3])
`,
);
