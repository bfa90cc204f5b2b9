import { createHash } from 'node:crypto';
import { type Approval, ApprovalStatus, redisKeys } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { redactValue } from '../logger/redact.js';
import { luaScript } from '../worker/scripts.js';

/** Approvals are kept as long as a task's events: a week. */
export const APPROVAL_TTL_SECONDS = 7 * 24 * 3600;
/** Longest summary of a call's arguments shown to an approver. */
export const SUMMARY_MAX_CHARS = 500;

/** What the store keeps besides the public Approval: where to find the parked job. */
export interface ApprovalRecord extends Approval {
  /** The BullMQ job of the parked subtask, in the role's queue. */
  jobId: string;
  /** argsHash of the call's arguments: a resumed run must meet the call it asked about. */
  argsHash: string;
}

/**
 * The approval id of a run's `callIndex`th tool call. Deterministic, so a resumed (replayed) run
 * finds the record its first run made instead of asking again.
 */
export function approvalId(taskId: string, subtaskId: string, callIndex: number): string {
  const digest = createHash('sha256').update(`${taskId}\n${subtaskId}\n${callIndex}`).digest('hex');
  return `apr-${digest.slice(0, 24)}`;
}

/**
 * The arguments as an approver may see them: secret-named fields and secret-shaped values
 * redacted by the logger's rules, then cut to SUMMARY_MAX_CHARS.
 */
export function summarizeArguments(args: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(redactValue(args)) ?? 'undefined';
  } catch {
    text = '(arguments that cannot be shown)';
  }
  return text.length > SUMMARY_MAX_CHARS ? `${text.slice(0, SUMMARY_MAX_CHARS - 1)}…` : text;
}

/**
 * Creates the approval unless it exists; returns [created (1|0), ...HGETALL].
 * KEYS: approval hash, pending set, the task's approvals set. ARGV: ttl, requestedAt ms, id, field/value pairs.
 */
const createScript = luaScript<[number, ...string[]]>(
  'flotillaApprovalCreate',
  `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local out = redis.call('HGETALL', KEYS[1])
  table.insert(out, 1, 0)
  return out
end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[1])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 1)
return out`,
);

/**
 * The one way an approval leaves `pending` (a decision, a timeout, a cancel), so the first writer
 * wins and every later one learns who did. Returns [1 applied | 0 already decided | -1 missing, ...HGETALL].
 * KEYS: approval hash, pending set, done set, the new status's set.
 * ARGV: status, by, reason, decidedAt ms, id, notBefore ms ('' for none: a timeout passes the deadline),
 * oldest kept requestedAt ms (older index entries are dropped).
 */
const decideScript = luaScript<[number, ...string[]]>(
  'flotillaApprovalDecide',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' or (ARGV[6] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'deadline')) > tonumber(ARGV[6])) then
  local out = redis.call('HGETALL', KEYS[1])
  table.insert(out, 1, 0)
  return out
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decidedBy', ARGV[2], 'reason', ARGV[3], 'decidedAt', ARGV[4])
local requested = redis.call('HGET', KEYS[1], 'requestedAt')
redis.call('ZREM', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], requested, ARGV[5])
redis.call('ZADD', KEYS[4], requested, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[7])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 1)
return out`,
);

const iso = (ms: string | undefined) => (ms ? new Date(Number(ms)).toISOString() : null);

function fromHash(flat: readonly string[]): ApprovalRecord | undefined {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i] as string] = flat[i + 1] as string;
  const status = ApprovalStatus.safeParse(h.status);
  if (!h.id || !status.success) return undefined;
  return {
    id: h.id,
    status: status.data,
    taskId: h.taskId ?? '',
    subtaskId: h.subtaskId ?? '',
    role: h.role ?? '',
    tool: h.tool ?? '',
    summary: h.summary ?? '',
    owner: h.owner ?? '',
    requestedAt: iso(h.requestedAt) ?? '',
    deadline: iso(h.deadline) ?? '',
    decidedAt: iso(h.decidedAt),
    decidedBy: h.decidedBy || null,
    reason: h.reason || null,
    approvers: 'admin',
    jobId: h.jobId ?? '',
    argsHash: h.argsHash ?? '',
  };
}

/** The public view of a record (what the API sends). */
export function toApproval(record: ApprovalRecord): Approval {
  const { jobId: _jobId, argsHash: _argsHash, ...approval } = record;
  return approval;
}

export interface NewApproval {
  id: string;
  taskId: string;
  subtaskId: string;
  role: string;
  tool: string;
  summary: string;
  owner: string;
  jobId: string;
  argsHash: string;
  requestedAt: number;
  deadline: number;
}

export type DecideResult =
  | { kind: 'applied'; approval: ApprovalRecord }
  | { kind: 'already'; approval: ApprovalRecord }
  | { kind: 'missing' };

export interface ApprovalPage {
  approvals: Approval[];
  total: number;
  nextOffset: number | null;
}

/**
 * Approvals in Redis: one hash each, indexed by status (sorted by request time) and by task.
 * Workers create them and time them out; the orchestrator's API decides and cancels them.
 */
export class ApprovalStore {
  readonly #keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.#keys = redisKeys(prefix);
  }

  /** Creates the approval, or returns the one already made for this id; `created` says which. */
  async create(a: NewApproval): Promise<{ created: boolean; approval: ApprovalRecord }> {
    const fields: Record<string, string> = {
      id: a.id,
      status: 'pending',
      taskId: a.taskId,
      subtaskId: a.subtaskId,
      role: a.role,
      tool: a.tool,
      summary: a.summary,
      owner: a.owner,
      jobId: a.jobId,
      argsHash: a.argsHash,
      requestedAt: String(a.requestedAt),
      deadline: String(a.deadline),
    };
    const [created, ...flat] = await createScript(
      this.redis,
      [this.#keys.approval(a.id), this.#keys.approvalsByStatus('pending'), this.#keys.taskApprovals(a.taskId)],
      [APPROVAL_TTL_SECONDS, a.requestedAt, a.id, ...Object.entries(fields).flat()],
    );
    const approval = fromHash(flat);
    if (!approval) throw new Error(`approval ${a.id} is unreadable`);
    return { created: created === 1, approval };
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const flat = await this.redis.hgetall(this.#keys.approval(id));
    return fromHash(Object.entries(flat).flat());
  }

  /**
   * Moves a pending approval to `status`; the first caller wins. A timeout (`notBefore` given)
   * applies only once the deadline is at or before `notBefore`.
   */
  async decide(
    id: string,
    change: { status: Exclude<ApprovalStatus, 'pending'>; by: string; reason: string; at?: number; notBefore?: number },
  ): Promise<DecideResult> {
    const at = change.at ?? Date.now();
    const [applied, ...flat] = await decideScript(
      this.redis,
      [
        this.#keys.approval(id),
        this.#keys.approvalsByStatus('pending'),
        this.#keys.approvalsDone,
        this.#keys.approvalsByStatus(change.status),
      ],
      [
        change.status,
        change.by,
        change.reason,
        at,
        id,
        change.notBefore === undefined ? '' : change.notBefore,
        at - APPROVAL_TTL_SECONDS * 1000,
      ],
    );
    if (applied === -1) return { kind: 'missing' };
    const approval = fromHash(flat);
    if (!approval) return { kind: 'missing' };
    return { kind: applied === 1 ? 'applied' : 'already', approval };
  }

  /** The task's approvals that are still pending. */
  async pendingOfTask(taskId: string): Promise<ApprovalRecord[]> {
    const ids = await this.redis.smembers(this.#keys.taskApprovals(taskId));
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r): r is ApprovalRecord => r?.status === 'pending');
  }

  /** Every approval of a task, whatever its status. */
  async ofTask(taskId: string): Promise<ApprovalRecord[]> {
    const ids = await this.redis.smembers(this.#keys.taskApprovals(taskId));
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r): r is ApprovalRecord => r !== undefined);
  }

  /**
   * How long the task's subtasks have waited for people, ms: each approval from its request to its
   * decision (or now), at most until its deadline. Time waiting for a person does not count against
   * the task's deadline (the sweep adds it), as it does not count against a run's seconds.
   */
  async waitedMs(taskId: string, now = Date.now()): Promise<number> {
    let waited = 0;
    for (const a of await this.ofTask(taskId)) {
      const end = Math.min(a.decidedAt ? Date.parse(a.decidedAt) : now, Date.parse(a.deadline));
      waited += Math.max(0, end - Date.parse(a.requestedAt));
    }
    return waited;
  }

  /**
   * A page of approvals, newest first: of one status, or (no status) the pending ones first and
   * then every other. Index entries whose approval expired are dropped as they are met.
   */
  async list(options: { status?: ApprovalStatus; offset: number; limit: number }): Promise<ApprovalPage> {
    const { offset, limit } = options;
    const pendingKey = this.#keys.approvalsByStatus('pending');
    const sets = options.status
      ? [this.#keys.approvalsByStatus(options.status)]
      : [pendingKey, this.#keys.approvalsDone];
    const sizes = await Promise.all(sets.map((k) => this.redis.zcard(k)));
    const total = sizes.reduce((a, b) => a + b, 0);
    const ids: { key: string; id: string }[] = [];
    let skip = offset;
    for (const [i, key] of sets.entries()) {
      const size = sizes[i] ?? 0;
      const want = limit - ids.length;
      if (want <= 0) break;
      if (skip >= size) {
        skip -= size;
        continue;
      }
      const page = await this.redis.zrevrange(key, skip, skip + want - 1);
      for (const id of page) ids.push({ key, id });
      skip = 0;
    }
    const records = await Promise.all(ids.map(({ id }) => this.get(id)));
    const gone = ids.filter((_, i) => records[i] === undefined);
    if (gone.length) await Promise.all(gone.map(({ key, id }) => this.redis.zrem(key, id)));
    const approvals = records.filter((r): r is ApprovalRecord => r !== undefined).map(toApproval);
    const next = offset + ids.length;
    return { approvals, total, nextOffset: ids.length > 0 && next < total ? next : null };
  }
}
