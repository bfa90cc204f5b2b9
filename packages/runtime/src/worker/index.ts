export { CancellationRegistry, publishCancellation, TaskCancelledError } from './cancellation.js';
export {
  type AgentContext,
  type AgentResult,
  defineWorker,
  type RunTools,
  type ToolDeps,
  type WorkerDefinition,
} from './define.js';
export {
  appendTaskEvent,
  readRunLedger,
  readTaskEvents,
  STREAM_MAX_LEN,
  TASK_EVENTS_TTL_SECONDS,
} from './events.js';
export { type Observation, runToolLoop, type ToolLoopOptions } from './loop.js';
export { DEFAULT_STALE_AFTER_MS, deregister, heartbeat, listRoles, type RoleRegistration } from './registry.js';
export { type RunningWorker, type RunWorkerOptions, runWorker, type WorkerConfig, workerConfigSchema } from './run.js';
export { type LuaScript, luaScript } from './scripts.js';
