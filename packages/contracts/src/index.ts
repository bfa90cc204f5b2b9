export { Approval, ApprovalDecision, ApprovalStatus } from './approval.js';
export { BudgetLimits, TaskBudget, Usage, ZERO_USAGE } from './budget.js';
export {
  decodeTaskEventEntry,
  encodeTaskEvent,
  TASK_EVENT_FIELD,
  TaskEvent,
  type TaskEventBody,
  type TaskEventType,
} from './events.js';
export { clusterHashTag, DEFAULT_PREFIX, queueNames, type RedisKeys, redisKeys, subtaskJobId } from './keys.js';
export { QueueStats } from './operator.js';
export { type AttemptEnd, FAULT_STOP_REASONS, isFaultEnd, VersionFigures, VersionFiguresList } from './outcomes.js';
export { PlanExample, ReplicaInfo, RoleInfo, RoleReplicas } from './roles.js';
export {
  SandboxFileName,
  SandboxLanguage,
  SandboxRunRequest,
  SandboxRunResult,
} from './sandbox.js';
export { BUDGET_STOP_REASONS, StopReason } from './stop-reason.js';
export {
  DEFAULT_TENANT,
  SubtaskDependency,
  SubtaskEnvelope,
  type SubtaskEnvelopeInput,
  SubtaskResult,
  Traceparent,
  WorkerIdentity,
} from './subtask.js';
export {
  IdempotencyKey,
  PlannedSubtask,
  SubtaskState,
  SubtaskView,
  TaskPage,
  TaskRequest,
  type TaskRequestInput,
  TaskStatus,
  TaskSummary,
  TaskView,
  TERMINAL_TASK_STATUSES,
} from './task.js';
export { TenantId } from './tenant.js';
export { NON_BLANK, type TextOptions, text } from './text.js';
export { CONTRACT_VERSION, contractVersion } from './version.js';
