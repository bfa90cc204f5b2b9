export { cancelTaskApprovals } from './cancel.js';
export {
  APPROVAL_TTL_SECONDS,
  type ApprovalPage,
  type ApprovalRecord,
  ApprovalStore,
  approvalId,
  type DecideResult,
  type NewApproval,
  SUMMARY_MAX_CHARS,
  summarizeArguments,
  toApproval,
} from './store.js';
