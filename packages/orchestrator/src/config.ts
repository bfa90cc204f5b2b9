import { isIP } from 'node:net';
import { baseConfigSchema, type ConfigProblem, memoryConfigSchema } from '@flotilla/runtime';
import { apiKeysFileProblems } from '@flotilla/runtime/auth';
import { llmConfigProblems, llmConfigSchema } from '@flotilla/runtime/llm';
import { z } from 'zod';

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/**
 * The orchestrator's settings, on top of the shared service settings (REDIS_URL, QUEUE_PREFIX,
 * HEALTH_PORT, AGENT_MAX_* ...), the LLM provider's and memory's. Defaults:
 *
 * | variable              | default  | why                                                                 |
 * |-----------------------|----------|---------------------------------------------------------------------|
 * | API_KEYS_FILE         | required | the clients: one line each, name, scope, key hash (`pnpm keys add`) |
 * | API_KEYS_RELOAD_MS    | 2000     | a revoked key stops working within this, without a restart           |
 * | AUTH                  | on       | `off` only with HEALTH_HOST on loopback: local development, one user |
 * | PORT                  | HEALTH_PORT (8080) | one server for the API and the probes                      |
 * | RATE_LIMIT_MAX        | 100      | requests per client per window on /v1                               |
 * | RATE_LIMIT_WINDOW_MS  | 60000    | the rate limit's window                                             |
 * | BODY_LIMIT_BYTES      | 65536    | a goal is at most 8000 chars; 64 KiB leaves room for metadata       |
 * | PLAN_MAX_SUBTASKS     | 8        | fan-out per task; more rarely helps and multiplies cost            |
 * | PLAN_REPLAN           | on       | one re-plan when subtasks fail in a way another plan may get round  |
 * | TASK_TTL_SECONDS      | 86400    | a finished task's state, events and jobs are kept a day, then expire |
 * | ADMISSION_REDIS_HIGH_WATER | 0.7 | new tasks get 503 above this share of Redis maxmemory; the rest is for running work |
 * | TENANT_MAX_OPEN_TASKS | 100      | queued and running tasks per client key; more get 429 (0: no cap)   |
 * | ROLE_STALE_AFTER_MS   | 15000    | a worker replica counts as live for 3 missed 5 s heartbeats          |
 * | PLAN_CONCURRENCY      | 4        | planning calls one replica runs at once                              |
 * | AGGREGATE_CONCURRENCY | 4        | final-answer calls one replica runs at once                          |
 * | SSE_HEARTBEAT_MS      | 15000    | below common proxy idle timeouts (30-60 s)                           |
 * | SSE_MAX_CLIENTS       | 500      | each stream holds one Redis connection                               |
 * | TRUST_PROXY           | false    | only behind a proxy that sets X-Forwarded-For (rate-limit keys)     |
 * | TASK_MAX_STEPS        | 100      | a whole task's model turns, split across its subtasks               |
 * | TASK_MAX_TOOL_CALLS   | 48       | a whole task's tool calls, split across its subtasks                |
 * | TASK_MAX_SECONDS      | 300      | a task's deadline; every subtask may use what is left of it          |
 * | TASK_MAX_TOKENS       | 400000   | a whole task's tokens, split across its subtasks                    |
 * | TASK_SWEEP_INTERVAL_MS | 5000   | one replica sweeps this often; two range reads when nothing is stuck |
 * | TASK_REQUEUE_AFTER_MS | 5000     | accepting takes milliseconds; queued this long, planning is re-checked |
 * | TASK_DEADLINE_GRACE_SECONDS | 60 | subtasks stop at the deadline themselves; the answer is one more call |
 * | MEMORY_CLEANUP_INTERVAL_MS | 3600000 | expired records are already unreadable; deleting them hourly only gives space back |
 *
 * A task's limits are its own (TASK_MAX_*), not a worker's per-run caps (AGENT_MAX_*): a request's
 * `budget` tightens them, the split gives each subtask a share, and each worker then tightens its
 * share again with its own AGENT_MAX_*.
 *
 * The sweep (flow/sweep-job.ts) enqueues planning for a task still queued after
 * TASK_REQUEUE_AFTER_MS without a planning job (a crash between accepting and enqueueing), and
 * fails with reason `deadline` an unfinished task TASK_DEADLINE_GRACE_SECONDS past its deadline (its
 * workers vanished). The grace is what the final answer may take after subtasks stop at the deadline.
 */
export const orchestratorConfigSchema = baseConfigSchema.extend({
  ...llmConfigSchema.shape,
  ...memoryConfigSchema.shape,
  // A path, not the keys themselves (the file holds only hashes), so it is not secret().
  API_KEYS_FILE: z.string().trim().min(1).optional(),
  API_KEYS_RELOAD_MS: int(2_000),
  AUTH: z.enum(['on', 'off']).default('on'),
  PORT: z.coerce.number().int().min(0).max(65535).optional(),
  RATE_LIMIT_MAX: int(100),
  RATE_LIMIT_WINDOW_MS: int(60_000),
  BODY_LIMIT_BYTES: int(64 * 1024),
  PLAN_MAX_SUBTASKS: z.coerce.number().int().min(1).max(32).default(8),
  PLAN_REPLAN: z.enum(['on', 'off']).default('on'),
  TASK_TTL_SECONDS: int(24 * 3600),
  ADMISSION_REDIS_HIGH_WATER: z.coerce.number().gt(0).max(1).default(0.7),
  TENANT_MAX_OPEN_TASKS: z.coerce.number().int().min(0).default(100),
  ROLE_STALE_AFTER_MS: int(15_000),
  PLAN_CONCURRENCY: int(4),
  AGGREGATE_CONCURRENCY: int(4),
  SSE_HEARTBEAT_MS: int(15_000),
  SSE_MAX_CLIENTS: int(500),
  TASK_MAX_STEPS: int(100),
  TASK_MAX_TOOL_CALLS: int(48),
  TASK_MAX_SECONDS: int(300),
  TASK_MAX_TOKENS: int(400_000),
  TASK_SWEEP_INTERVAL_MS: int(5_000),
  TASK_REQUEUE_AFTER_MS: int(5_000),
  TASK_DEADLINE_GRACE_SECONDS: z.coerce.number().int().min(0).default(60),
  MEMORY_CLEANUP_INTERVAL_MS: int(3_600_000),
  TRUST_PROXY: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});
export type OrchestratorConfig = z.output<typeof orchestratorConfigSchema>;

/** 127.0.0.0/8 and ::1, written as addresses: a name such as `localhost` may resolve elsewhere. */
export function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  // The URL parser writes an IPv6 address in its one canonical form (0:0:0:0:0:0:0:1 -> ::1).
  return isIP(host) === 6 && new URL(`http://[${host}]/`).hostname === '[::1]';
}

/**
 * Fail closed: /v1 is never served without keys by accident. Keys come from API_KEYS_FILE (empty,
 * malformed or example files refused); the one way to run without them is AUTH=off, and only on a
 * loopback address, where nobody but this machine's users can reach the API.
 */
export function authConfigProblems(
  config: Pick<OrchestratorConfig, 'AUTH' | 'API_KEYS_FILE' | 'HEALTH_HOST'>,
): ConfigProblem[] {
  if (config.AUTH === 'off') {
    if (!isLoopback(config.HEALTH_HOST))
      return [
        {
          variable: 'AUTH',
          message: `off is allowed only when the API listens on loopback (HEALTH_HOST=127.0.0.1 or ::1), not on ${JSON.stringify(config.HEALTH_HOST)}`,
        },
      ];
    if (config.API_KEYS_FILE !== undefined)
      return [{ variable: 'AUTH', message: 'is off while API_KEYS_FILE is set; unset one of them' }];
    return [];
  }
  if (config.API_KEYS_FILE === undefined)
    return [
      {
        variable: 'API_KEYS_FILE',
        message:
          'required: a keys file (`pnpm keys add <name>` writes one), or AUTH=off with HEALTH_HOST=127.0.0.1 for local development',
      },
    ];
  return apiKeysFileProblems(config.API_KEYS_FILE, 'API_KEYS_FILE');
}

/** Every problem the schema cannot see alone: the LLM provider and its key, and auth. */
export const orchestratorConfigProblems = (config: OrchestratorConfig): ConfigProblem[] => [
  ...llmConfigProblems(config),
  ...authConfigProblems(config),
];
