export {
  createLifecycle,
  type Lifecycle,
  type LifecycleOptions,
  type LifecycleState,
  SHUTDOWN_PHASES,
  type ShutdownPhase,
  type ShutdownReport,
  type ShutdownStep,
} from './lifecycle.js';
