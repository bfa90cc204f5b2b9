import { readFileSync, writeFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  type baseConfigSchema,
  emptyCredentialFileProblems,
  redisAuthProblems,
  redisClusterProblems,
} from '../config/base.js';
import type { ConfigProblem } from '../config/errors.js';
import { checkConfig, EX_CONFIG, loadConfigOrExit } from '../config/load.js';
import { installEgressProxy } from '../http/egress.js';
import { createLifecycle, type Lifecycle } from '../lifecycle/index.js';
import { createLogger } from '../logger/index.js';
import { shutdownTelemetry } from '../telemetry/index.js';
import { createRedisConnection, type RedisRole } from './redis-connection.js';

export interface Service<C> {
  config: C;
  log: Logger;
  lifecycle: Lifecycle;
  /** A new Redis connection (a cluster client with REDIS_CLUSTER_NODES) whose errors are logged and which closes in the lifecycle's close phase. */
  redis(role: RedisRole): Redis;
  /** Installs SIGTERM/SIGINT handling (unless disabled) and marks the service ready. */
  ready(): void;
}

export interface StartServiceOptions<C = unknown> {
  /** Used when SERVICE_NAME is unset. */
  name: string;
  /** Environment to read instead of process.env (tests, benchmarks). */
  env?: NodeJS.ProcessEnv;
  /**
   * This process is the service: install SIGTERM/SIGINT handlers on ready(), and log a crash as a
   * redacted JSON line before exiting 1. Default true; false when a test runs a service in-process.
   */
  handleSignals?: boolean;
  /** Problems the schema cannot see alone (loadConfig's `check`), e.g. llmConfigProblems. */
  check?: (config: C) => readonly ConfigProblem[];
}

type BaseShape = typeof baseConfigSchema;

let crashLogging = false;

/**
 * Node prints an uncaught error with its own inspector, which knows nothing of secrets: a refused
 * Redis AUTH, for one, carries the command's arguments, the password among them. The logger redacts
 * every registered secret, so a crash goes through it instead.
 */
function logCrashes(log: Logger): void {
  if (crashLogging) return;
  crashLogging = true;
  const crash = (err: unknown) => {
    log.fatal({ err }, 'crashed');
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

/**
 * `--check-config-batch=<file>`: one JSON environment per line of the file, one JSON line in `<file>.out` per environment with
 * what this entry point would have done with it (`code` 0, or 78 and the `stderr` lines; 1 and the error
 * for anything else, a bug), then exit 0. The config fuzzing (test/chaos/config-fuzz.test.ts) runs
 * thousands of environments through each service's own entry point this way, paying its start-up once.
 */
function checkConfigBatch<S extends BaseShape>(
  file: string,
  schema: S,
  checks: (env: NodeJS.ProcessEnv) => (c: z.output<S>) => readonly ConfigProblem[],
): never {
  const results: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const env = JSON.parse(line) as NodeJS.ProcessEnv;
    let out: { code: number; stderr: string };
    try {
      const outcome = checkConfig(schema, { env, check: checks(env) });
      out = outcome.ok ? { code: 0, stderr: '' } : { code: EX_CONFIG, stderr: outcome.lines.join('') };
    } catch (err) {
      out = { code: 1, stderr: err instanceof Error ? `${err.stack}\n` : `${String(err)}\n` };
    }
    results.push(JSON.stringify(out));
  }
  // A file, written at once: stdout to a pipe is asynchronous, and the process exits right after.
  writeFileSync(`${file}.out`, `${results.join('\n')}\n`);
  process.exit(0);
}

/**
 * The start every flotilla service shares: validated config (exit 78 on a bad one), a JSON logger,
 * a lifecycle whose last step flushes telemetry, and Redis connections that close themselves.
 */
export function startService<S extends BaseShape>(
  schema: S,
  options: StartServiceOptions<z.output<S>>,
): Service<z.output<S>> {
  const env = options.env ?? process.env;
  const checks = (e: NodeJS.ProcessEnv) => (c: z.output<S>) => [
    ...emptyCredentialFileProblems(c, e),
    ...redisAuthProblems(c),
    ...redisClusterProblems(c, e),
    ...(options.check?.(c) ?? []),
  ];
  const isProcess = options.handleSignals ?? true;
  const batch = process.argv.find((a) => a.startsWith('--check-config-batch='));
  if (isProcess && batch) checkConfigBatch(batch.slice('--check-config-batch='.length), schema, checks);
  const config = loadConfigOrExit(schema, { env, check: checks(env) });
  // `--check-config`: validate the environment and exit, 0 or (above) 78 with one line per problem,
  // before any connection or port: what an operator can run before a deploy (docs/chaos.md).
  if (isProcess && process.argv.includes('--check-config')) {
    process.stdout.write('config ok\n');
    process.exit(0);
  }
  const log = createLogger({
    service: config.SERVICE_NAME ?? options.name,
    level: config.LOG_LEVEL,
    toolResultSampleRate: config.LOG_TOOL_RESULT_SAMPLE_RATE,
  });
  if (options.handleSignals ?? true) logCrashes(log);
  // Before anything opens a connection: in Compose the only way out is the egress proxy, and Node's
  // fetch would otherwise ignore HTTPS_PROXY and fail to connect.
  const egress = installEgressProxy(env);
  if (egress) log.info({ egress }, 'outbound HTTP goes through the egress proxy');
  const lifecycle = createLifecycle({ log, graceMs: config.SHUTDOWN_GRACE_MS });
  const connections: Redis[] = [];
  lifecycle.onShutdown(
    'redis',
    async () => {
      await Promise.allSettled(connections.map((c) => c.quit()));
    },
    'close',
  );
  lifecycle.onShutdown('telemetry', () => shutdownTelemetry(), 'flush');

  return {
    config,
    log,
    lifecycle,
    redis(role) {
      const conn = createRedisConnection(config, role);
      conn.on('error', (err) => log.warn({ err: { message: err.message }, redis: role }, 'redis connection error'));
      connections.push(conn);
      return conn;
    },
    ready() {
      if (options.handleSignals ?? true) lifecycle.installSignalHandlers();
      lifecycle.markReady();
    },
  };
}
