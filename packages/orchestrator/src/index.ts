// The orchestrator's public API: the HTTP app (built, not listening), the orchestrator's parts,
// and the pure pieces (planner, budget split, view) that tests and the CLI drive directly.
export { type AppDeps, buildApp, DEFAULT_BODY_LIMIT } from './api/app.js';
export { openApiDocument } from './api/openapi.js';
export type { Problem } from './api/problem.js';
export { TaskAccepted, TaskIdParam } from './api/schemas.js';
export { type OrchestratorConfig, orchestratorConfigSchema } from './config.js';
export {
  BadRequestError,
  ConflictError,
  type FieldError,
  InvalidBodyError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ProblemError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from './errors.js';
export {
  type AggregateJobDeps,
  type AggregateJobResult,
  type AnswerMemory,
  answerPrompt,
  collectOutcomes,
  createAggregateProcessor,
  type SubtaskOutcome,
} from './flow/aggregate-job.js';
export { activeTraceContext, buildFlow, type FlowOptions } from './flow/dispatch.js';
export { RETRY_OPTS, TaskJobData } from './flow/jobs.js';
export { createPlanProcessor, type PlanJobDeps, type PlanJobResult } from './flow/plan-job.js';
export { TaskQueues } from './flow/queues.js';
export { createOrchestrator, type Orchestrator, type OrchestratorOptions } from './orchestrator.js';
export { createPlanner, type Planner, type PlannerOptions, type PlanOutcome } from './planner/planner.js';
export { DEFAULT_MAX_SUBTASKS, planResponseSchema } from './planner/schema.js';
export { type PlanCheck, PlanValidator } from './planner/validate.js';
export { splitBudget } from './tasks/budget.js';
export type { TaskRecord } from './tasks/record.js';
export { type Submitted, TaskService, type TaskServiceOptions } from './tasks/service.js';
export {
  type CreateOutcome,
  DEFAULT_OWNER,
  DEFAULT_TASK_TTL_SECONDS,
  type NewTask,
  requestFingerprint,
  type TaskListOptions,
  TaskStore,
} from './tasks/store.js';
export { buildTaskView } from './tasks/view.js';
