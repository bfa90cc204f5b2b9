import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterHashTag } from '@flotilla/contracts';
import { z } from 'zod';
import { LOG_LEVELS } from '../logger/index.js';
import type { ConfigProblem } from './errors.js';
import { envField } from './fields.js';
import { secret, secretUrl } from './secret.js';

/**
 * The service's own version: the `version` of the package.json in the working directory
 * (an image runs from its package's folder), else "unknown". Images should set
 * SERVICE_VERSION from a build arg instead of relying on this.
 */
function defaultServiceVersion(cwd: string = process.cwd()): string {
  try {
    const pkg = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' && pkg.version ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What KILL_SWITCH may say at start: everything, every side-effecting tool, or named tools. */
const killSwitch = z
  .string()
  .trim()
  .regex(/^(all|writes|[\w.-]+(\s*,\s*[\w.-]+)*)$/, 'expected "all", "writes" or a comma list of tool names');

/** `host:port` (IPv6 in brackets: `[::1]:7000`). */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[\w.-]+):(\d{1,5})$/;

export interface ClusterNode {
  host: string;
  port: number;
}

/** REDIS_CLUSTER_NODES: the seed nodes a cluster client asks for the slot map (one is enough, more survive one being down). */
const clusterNodes = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .refine((items) => items.length > 0, 'expected host:port[,host:port...]')
  .refine(
    (items) => items.every((i) => HOST_PORT.test(i) && Number(HOST_PORT.exec(i)?.[2]) <= 65535),
    'expected a comma list of host:port (e.g. redis-0:6379,redis-1:6379)',
  )
  .transform((items): ClusterNode[] =>
    items.map((i) => {
      const [, host = '', port = ''] = HOST_PORT.exec(i) ?? [];
      return { host: host.replace(/^\[|\]$/g, ''), port: Number(port) };
    }),
  );

// Settings every flotilla service reads. Each may also come from `<NAME>_FILE` (Docker/K8s secrets);
// an empty value counts as unset.
//
// | Variable                     | Default                  | Why this default                                               |
// |------------------------------|--------------------------|----------------------------------------------------------------|
// | SERVICE_NAME                 | (the role / service)     | Names logs, traces and metrics; OTEL_SERVICE_NAME wins for OTel |
// | SERVICE_VERSION              | package.json or unknown  | Tells a canary's results apart; set by the image build          |
// | LOG_LEVEL                    | info                     | debug is too chatty for a fleet of agents                       |
// | LOG_TOOL_RESULT_SAMPLE_RATE  | 0.01                     | Tool payloads are large and may hold personal data              |
// | REDIS_URL                    | redis://127.0.0.1:6379   | Local development; its password is treated as a secret          |
// | REDIS_USERNAME               | (unset: the default user)| Compose gives each service its own ACL user (compose/README.md) |
// | REDIS_PASSWORD               | (unset; required with a username) | Read from REDIS_PASSWORD_FILE in Compose; never logged |
// | REDIS_CLUSTER_NODES          | (unset: REDIS_URL's node)| host:port,... of a Redis Cluster; needs a {tagged} QUEUE_PREFIX |
// | QUEUE_PREFIX                 | flotilla                 | BullMQ key prefix; tests and tenants use their own              |
// | HEALTH_PORT                  | 8080                     | One well-known port for probes and /metrics; 0 picks a free one |
// | HEALTH_HOST                  | 0.0.0.0                  | Probes come from outside the container                          |
// | SHUTDOWN_GRACE_MS            | 25000                    | Drain deadline; stop_grace_period must exceed it (+ close/flush) |
// | OTEL_EXPORTER_OTLP_ENDPOINT  | (unset: no export)       | Tracing is off without a collector; /metrics still works        |
// | AGENT_MAX_STEPS              | 25                       | Model turns per run: enough to research, bounded cost           |
// | AGENT_MAX_TOOL_CALLS         | 12                       | Tool calls per run, retries excluded                            |
// | AGENT_MAX_SECONDS            | 60                       | Wall clock per run                                              |
// | AGENT_MAX_TOKENS             | 100000                   | Prompt + completion tokens per run                              |
// | TOOLS_ALLOWLIST              | *                        | Comma list of globs; narrow it per deployment                   |
// | TOOLS_REQUIRE_APPROVAL       | (unset: none)            | Comma list of globs whose calls wait for a person (approvals)   |
// | APPROVAL_TIMEOUT_S           | 300                      | Undecided approvals deny then: on-call has 5 minutes to answer  |
// | KILL_SWITCH                  | (unset: off)             | "all", "writes" or tool names, applied at start                 |
// | CHROMA_URL                   | (unset: no memory)       | Long-term memory is optional                                    |
// | CHROMA_TOKEN                 | (unset: no auth header)  | Bearer token for Chroma's gate; CHROMA_TOKEN_FILE in Compose    |
export const baseConfigSchema = z.object({
  SERVICE_NAME: z.string().trim().min(1).optional(),
  SERVICE_VERSION: z
    .string()
    .trim()
    .min(1)
    .default(() => defaultServiceVersion()),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  LOG_TOOL_RESULT_SAMPLE_RATE: envField.fraction().default(0.01),
  REDIS_URL: secretUrl(envField.url(['redis', 'rediss'])).default('redis://127.0.0.1:6379'),
  REDIS_USERNAME: z
    .string()
    .trim()
    .regex(/^[\w.-]+$/, 'expected an ACL user name (letters, digits, ".", "_", "-")')
    .optional(),
  REDIS_PASSWORD: secret(z.string()).optional(),
  REDIS_CLUSTER_NODES: clusterNodes.optional(),
  QUEUE_PREFIX: z.string().trim().min(1).default('flotilla'),
  HEALTH_PORT: envField.port().default(8080),
  HEALTH_HOST: z.string().trim().min(1).default('0.0.0.0'),
  SHUTDOWN_GRACE_MS: envField.positiveInt().default(25_000),
  OTEL_EXPORTER_OTLP_ENDPOINT: envField.url(['http', 'https']).optional(),
  AGENT_MAX_STEPS: envField.positiveInt().default(25),
  AGENT_MAX_TOOL_CALLS: envField.positiveInt().default(12),
  AGENT_MAX_SECONDS: envField.positiveNumber().default(60),
  AGENT_MAX_TOKENS: envField.positiveInt().default(100_000),
  TOOLS_ALLOWLIST: envField.list().default(['*']),
  TOOLS_REQUIRE_APPROVAL: envField.list().default([]),
  APPROVAL_TIMEOUT_S: envField.positiveNumber().default(300),
  KILL_SWITCH: killSwitch.optional(),
  CHROMA_URL: envField.url(['http', 'https']).optional(),
  CHROMA_TOKEN: secret(z.string().trim().min(16)).optional(),
});
export type BaseConfig = z.output<typeof baseConfigSchema>;

/**
 * Redis credentials that only make sense together. A user without a password would log in as
 * nobody (or, worse, silently as the default user), so a username asks for its password; and one
 * password in two places would leave an operator guessing which one is used.
 */
export function redisAuthProblems(config: Pick<BaseConfig, 'REDIS_URL' | 'REDIS_USERNAME' | 'REDIS_PASSWORD'>) {
  const problems: ConfigProblem[] = [];
  const url = new URL(config.REDIS_URL);
  if (config.REDIS_USERNAME && !config.REDIS_PASSWORD)
    problems.push({
      variable: 'REDIS_PASSWORD',
      message:
        'required when REDIS_USERNAME is set (set REDIS_PASSWORD or REDIS_PASSWORD_FILE; an empty file counts as unset)',
    });
  if ((config.REDIS_USERNAME || config.REDIS_PASSWORD) && (url.username || url.password))
    problems.push({
      variable: 'REDIS_URL',
      message: 'carries credentials, and so do REDIS_USERNAME/REDIS_PASSWORD: keep them in one place',
    });
  return problems;
}

/**
 * Cluster mode's preconditions. BullMQ's scripts and flotilla's own name several keys of a queue and
 * of a task at once; on a cluster they run only when every key is in one slot, which only a hash tag
 * in the prefix guarantees (docs/redis-cluster.md). Without one every flow would fail with CROSSSLOT
 * at the first task, so it is refused at start. And REDIS_URL next to the node list would leave an
 * operator guessing which Redis is used.
 */
export function redisClusterProblems(
  config: Pick<BaseConfig, 'REDIS_CLUSTER_NODES' | 'QUEUE_PREFIX'>,
  env: NodeJS.ProcessEnv,
): ConfigProblem[] {
  if (!config.REDIS_CLUSTER_NODES) return [];
  const problems: ConfigProblem[] = [];
  if (clusterHashTag(config.QUEUE_PREFIX) === undefined)
    problems.push({
      variable: 'QUEUE_PREFIX',
      message: `"${config.QUEUE_PREFIX}" has no hash tag, which REDIS_CLUSTER_NODES needs (every key in one slot): use e.g. {${config.QUEUE_PREFIX.replace(/[{}]/g, '') || 'flotilla'}}`,
    });
  if (env.REDIS_URL?.trim() || env.REDIS_URL_FILE?.trim())
    problems.push({
      variable: 'REDIS_URL',
      message:
        'is set, and so is REDIS_CLUSTER_NODES: set one of them (credentials go in REDIS_USERNAME/REDIS_PASSWORD)',
    });
  return problems;
}

/**
 * A credential whose file is named but empty: the loader would read it as unset and the service would
 * run without it (and be refused, or worse, not be). For these it is a mistake, never a choice.
 */
export function emptyCredentialFileProblems(
  config: Pick<BaseConfig, 'REDIS_PASSWORD' | 'CHROMA_TOKEN'>,
  env: NodeJS.ProcessEnv,
): ConfigProblem[] {
  return (['REDIS_PASSWORD', 'CHROMA_TOKEN'] as const)
    .filter((key) => env[`${key}_FILE`] && config[key] === undefined)
    .map((key) => ({ variable: `${key}_FILE`, message: `${env[`${key}_FILE`]} is empty` }));
}
