// The runtime's public API: the plumbing every flotilla service runs on, named one by one. Four
// subpaths hold the rest: @flotilla/runtime/worker (defining and running workers, and the task
// protocol around them), @flotilla/runtime/llm (model clients), @flotilla/runtime/auth (API keys
// files, light enough for the CLI), @flotilla/runtime/mcp (MCP servers as tool sources) and
// @flotilla/runtime/testing (helpers for tests). Anything none of these entries exports is internal.
export {
  APPROVAL_TTL_SECONDS,
  type ApprovalPage,
  type ApprovalRecord,
  ApprovalStore,
  approvalId,
  cancelTaskApprovals,
  type DecideResult,
  summarizeArguments,
  toApproval,
} from './approvals/index.js';
export type { Budget, BudgetStopReason } from './budget/index.js';
export { createBudget, tightenLimits } from './budget/index.js';
export {
  type BaseConfig,
  baseConfigSchema,
  type ClusterNode,
  ConfigError,
  type ConfigProblem,
  EX_CONFIG,
  envField,
  type LoadConfigOrExitOptions,
  loadConfig,
  loadConfigOrExit,
  redisClusterProblems,
  secret,
} from './config/index.js';
export { FlotillaError, isTransientError } from './errors.js';
export {
  type HealthApp,
  type HealthRoutesOptions,
  LivezBody,
  type ReadinessCheck,
  ReadyzBody,
  redisCheck,
  registerHealthRoutes,
  StartupzBody,
} from './health/index.js';
export {
  BadRequestError,
  createEgressDispatcher,
  describeProxy,
  type EgressProxySettings,
  egressProxySettings,
  type FieldError,
  fastifyClientProblem,
  InvalidBodyError,
  installEgressProxy,
  internalProblem,
  PayloadTooLargeError,
  PROBLEM_CONTENT_TYPE,
  type ProblemBody,
  ProblemError,
  sendProblem,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from './http/index.js';
export type { Lifecycle, ShutdownPhase, ShutdownReport } from './lifecycle/index.js';
export { createLogger, type Logger, type LoggerOptions, type LogLevel } from './logger/index.js';
export {
  type CreateMemoryOptions,
  createMemory,
  DEFAULT_MEMORY_TTL_DAYS,
  MEMORY_DEPENDENCY,
  type Memory,
  type MemoryConfig,
  type MemoryDoc,
  type MemoryHit,
  MemorySearchHit,
  type MemoryStore,
  memoryConfigSchema,
  memorySearchTool,
  memoryWriteTool,
  type Provenance,
  type Trust,
} from './memory/index.js';
export {
  createRedisConnection,
  duplicateConnection,
  isCluster,
  type RedisRole,
  type Service,
  type StartServiceOptions,
  startService,
} from './service/index.js';
export {
  type BullmqTelemetryOptions,
  bullmqTelemetry,
  getMetrics,
  initTelemetry,
  type TelemetryOptions,
  withSpan,
} from './telemetry/index.js';
export {
  type AnyTool,
  argsHash,
  createKillSwitch,
  createToolGateway,
  defineTool,
  type KillSwitch,
  type KillSwitchChange,
  type KillSwitchOptions,
  type KillSwitchRecord,
  type KillSwitchState,
  OPERATOR_ACTIONS_MAX_LEN,
  readKillSwitchRecord,
  type SideEffects,
  setKillSwitch,
  type Tool,
  type ToolContext,
  type ToolFailureCode,
  type ToolGateway,
  type ToolLog,
  type ToolOutcome,
  type ToolSource,
  type ToolSpec,
} from './tools/index.js';
