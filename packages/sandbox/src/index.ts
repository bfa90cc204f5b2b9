// The sandbox's public API: the HTTP app (built, not listening), the runner and its isolation.
export { type AppDeps, buildApp, RunSlots } from './api/app.js';
export type { Problem } from './api/problem.js';
export { MIN_MEMORY_MB, runLimits, runRequestSchema, type ServiceLimits } from './api/request.js';
export { type SandboxConfig, sandboxConfigSchema } from './config.js';
export {
  BadRequestError,
  type FieldError,
  InvalidBodyError,
  ProblemError,
  SandboxBusyError,
  SandboxSetupError,
  UnauthorizedError,
} from './errors.js';
export {
  buildCommand,
  type InputFile,
  type IsolationMode,
  type Platform,
  RUN_ENV,
  type RunLimits,
  type SandboxCommand,
} from './isolation/command.js';
export { closeInheritedFds } from './isolation/fds.js';
export { detectPlatform, type PlatformOptions } from './isolation/platform.js';
export { chooseIsolation } from './isolation/selftest.js';
export { readOutFiles } from './run/out-files.js';
export {
  type RunInput,
  Runner,
  type RunnerOptions,
  type RunOutcome,
  type RunResult,
  SandboxRunError,
} from './run/runner.js';
