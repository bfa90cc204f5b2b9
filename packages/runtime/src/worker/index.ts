export { CancellationRegistry, publishCancellation } from './cancellation.js';
export {
  type AgentContext,
  type AgentResult,
  defineWorker,
  type RunTools,
  type ToolDeps,
  type WorkerDefinition,
} from './define.js';
export { dependencyContext } from './dependencies.js';
export { appendTaskEvent, readTaskEvents, STREAM_MAX_LEN } from './events.js';
export { InjectedFaultError, withFaultInjection } from './fault-injection.js';
export { type Observation, runToolLoop, type ToolLoopOptions } from './loop.js';
export { readVersionFigures } from './outcomes.js';
export { deregister, heartbeat, listReplicas, listRoles, type RoleRegistration } from './registry.js';
export { type RunningWorker, type RunWorkerOptions, runWorker, type WorkerConfig } from './run.js';
export { OUTCOMES_MAX_LEN } from './run-book.js';
export { type LuaScript, luaScript } from './scripts.js';
