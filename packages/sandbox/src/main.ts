import { type ConfigProblem, EX_CONFIG, registerHealthRoutes, startService } from '@flotilla/runtime';
import type { FastifyBaseLogger } from 'fastify';
import { buildApp } from './api/app.js';
import type { ServiceLimits } from './api/request.js';
import { type SandboxConfig, sandboxConfigSchema } from './config.js';
import { SandboxSetupError } from './errors.js';
import { closeInheritedFds } from './isolation/fds.js';
import { chooseIsolation } from './isolation/selftest.js';
import { Runner } from './run/runner.js';

// Before anything else can spawn: no descriptor this process inherited may reach a run.
const closedFds = closeInheritedFds();

/** Settings that only fail together: input that could not fit in the run's own disk. */
function checkConfig(config: SandboxConfig): ConfigProblem[] {
  const disk = config.SANDBOX_DISK_MB * 1024 * 1024;
  if (config.SANDBOX_MAX_CODE_BYTES + config.SANDBOX_MAX_FILES_BYTES > disk) {
    return [
      {
        variable: 'SANDBOX_DISK_MB',
        message: `must hold SANDBOX_MAX_CODE_BYTES + SANDBOX_MAX_FILES_BYTES (${config.SANDBOX_MAX_CODE_BYTES + config.SANDBOX_MAX_FILES_BYTES} bytes)`,
      },
    ];
  }
  return [];
}

const service = startService(sandboxConfigSchema, { name: 'sandbox', check: checkConfig });
const { config, log, lifecycle } = service;

let platform: Awaited<ReturnType<typeof chooseIsolation>>;
try {
  platform = await chooseIsolation(config.SANDBOX_ISOLATION, {
    uidBase: config.SANDBOX_UID_BASE,
    python: config.SANDBOX_PYTHON,
    node: config.SANDBOX_NODE,
  });
} catch (err) {
  if (!(err instanceof SandboxSetupError)) throw err;
  // The host cannot isolate runs: an operator must fix the setup (install bubblewrap, allow user
  // namespaces, run as root); restarting would not help, so the exit is the config error's.
  process.stderr.write(`config error: SANDBOX_ISOLATION: ${err.message}\n`);
  process.exit(EX_CONFIG);
}

const limits: ServiceLimits = {
  max: {
    timeoutMs: config.SANDBOX_MAX_TIMEOUT_MS,
    memoryMb: config.SANDBOX_MAX_MEMORY_MB,
    procs: config.SANDBOX_MAX_PROCS,
    openFiles: config.SANDBOX_MAX_OPEN_FILES,
    diskMb: config.SANDBOX_DISK_MB,
    fileBytes: config.SANDBOX_MAX_FILE_BYTES,
  },
  maxCodeBytes: config.SANDBOX_MAX_CODE_BYTES,
  maxStdinBytes: config.SANDBOX_MAX_STDIN_BYTES,
  maxFiles: config.SANDBOX_MAX_FILES,
  maxFilesBytes: config.SANDBOX_MAX_FILES_BYTES,
};
const runner = new Runner({
  platform,
  maxOutputBytes: config.SANDBOX_MAX_OUTPUT_BYTES,
  maxOutFilesBytes: config.SANDBOX_MAX_OUT_FILES_BYTES,
});

const app = await buildApp({
  run: (input) => runner.run(input),
  limits,
  token: config.SANDBOX_TOKEN,
  maxConcurrent: config.SANDBOX_MAX_CONCURRENT,
  log: log as FastifyBaseLogger,
  registerHealth: (server) => registerHealthRoutes(server, { checks: [], lifecycle }),
});

// Shutdown, in the lifecycle's phase order: readiness goes 503; the listener stops taking
// connections (fastify's close answers 503 to requests on kept-alive ones) while runs in flight
// finish within their own wall-time limits, bounded by SHUTDOWN_GRACE_MS; then any run still going
// is killed (runs would also die with this process: --die-with-parent).
let closing: Promise<void> | undefined;
lifecycle.onShutdown(
  'http server',
  () => {
    closing = app.close();
  },
  'stop-intake',
);
lifecycle.onShutdown('drain runs', () => closing, 'drain');
lifecycle.onShutdown('kill runs', () => runner.killAll(), 'close');

const port = config.PORT ?? config.HEALTH_PORT;
await app.listen({ port, host: config.HEALTH_HOST });
service.ready();
log.info(
  {
    port,
    isolation: platform.mode,
    seccomp: platform.seccomp !== undefined,
    uid: process.geteuid?.(),
    interpreters: platform.interpreters,
    maxConcurrent: config.SANDBOX_MAX_CONCURRENT,
    ...(closedFds.length > 0 ? { closedInheritedFds: closedFds } : {}),
  },
  'sandbox ready',
);
