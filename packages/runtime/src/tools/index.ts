export { argsHash } from './audit.js';
export { type BackoffOptions, fullJitter } from './backoff.js';
export {
  type AnyTool,
  defineTool,
  type SideEffects,
  type Tool,
  type ToolContext,
  type ToolLog,
  type ToolSpec,
} from './define.js';
export { ToolTimeoutError } from './errors.js';
export {
  type BreakerOptions,
  type CircuitStatus,
  createToolGateway,
  type ToolCallOptions,
  type ToolFailureCode,
  type ToolGateway,
  type ToolGatewayOptions,
  type ToolOutcome,
  type ToolSource,
} from './gateway.js';
export {
  createKillSwitch,
  type KillSwitch,
  type KillSwitchChange,
  type KillSwitchOptions,
  type KillSwitchRecord,
  type KillSwitchState,
  OPERATOR_ACTIONS_MAX_LEN,
  parseKillSwitch,
  readKillSwitch,
  readKillSwitchRecord,
  setKillSwitch,
} from './kill-switch.js';
