import { type Approval, ApprovalStatus } from '@flotilla/contracts';
import { UsageError } from './errors.js';
import { duration, fit, table, when } from './format.js';
import { type CommandContext, print, printJson } from './io.js';

// Approvals (human in the loop), admin key: the API's contract is
//   GET  /v1/admin/approvals?status=&limit=&offset=  -> { approvals, total, nextOffset }
//   POST /v1/admin/approvals/{id}/decision { decision: approve|deny, reason } -> Approval | 409
// (FLOTILLA_APPROVAL_DECIDED when someone decided first; its detail says who and what).

export const APPROVAL_STATUSES = ApprovalStatus.options;
export type { Approval };

interface ApprovalPage {
  approvals: Approval[];
  total: number;
  nextOffset: number | null;
}

export function approvalStatus(value: string | undefined): ApprovalStatus {
  if (value === undefined) return 'pending';
  if ((APPROVAL_STATUSES as readonly string[]).includes(value)) return value as ApprovalStatus;
  throw new UsageError(`--status must be one of ${APPROVAL_STATUSES.join(', ')}, not "${value}"`);
}

/** "in 4m 10s" before the deadline, "overdue" after it (the timeout denies it soon). */
export const untilDeadline = (deadline: string, now = Date.now()) => {
  const left = Date.parse(deadline) - now;
  return left > 0 ? `in ${duration(left)}` : 'overdue';
};

/** `flotilla approvals [--status S]`: pending ones by default, oldest first as the API lists them. */
export async function listApprovals(
  ctx: CommandContext,
  opts: { status: ApprovalStatus; limit?: number },
): Promise<number> {
  const q = new URLSearchParams({ status: opts.status, ...(opts.limit && { limit: String(opts.limit) }) });
  const page = await ctx.client.admin<ApprovalPage>('GET', `/v1/admin/approvals?${q}`, 'list the approvals');
  if (ctx.json) {
    printJson(ctx, page);
    return 0;
  }
  if (page.approvals.length === 0) {
    print(ctx, ctx.style.dim(`no ${opts.status.replace('_', ' ')} approvals`));
    return 0;
  }
  const width = Math.max(60, ctx.out.columns ?? 120);
  const pending = opts.status === 'pending';
  const rows = page.approvals.map((a) => [
    a.id,
    a.tool,
    `${a.taskId.slice(0, 8)}/${a.subtaskId}`,
    pending ? untilDeadline(a.deadline) : `${a.decidedBy ?? '-'} ${when(a.decidedAt)}`,
    a.summary,
  ]);
  const lines = table(
    ['ID', 'TOOL', 'TASK/SUBTASK', pending ? 'DEADLINE' : 'DECIDED', 'SUMMARY'],
    rows,
    (cell, row, col) => (col === 3 && pending && rows[row]?.[3] === 'overdue' ? ctx.style.red(cell) : cell),
  );
  print(ctx, [ctx.style.dim(lines[0] as string), ...lines.slice(1).map((l) => fit(l, width))]);
  const more = page.nextOffset === null ? '' : ` (more: --limit ${page.total})`;
  print(
    ctx,
    ctx.style.dim(
      pending
        ? `${page.approvals.length} of ${page.total}${more}; decide with flotilla approve|deny <ID> --reason "..."`
        : `${page.approvals.length} of ${page.total}${more}`,
    ),
  );
  return 0;
}

/** `flotilla approve|deny <id> --reason R`: the decision, audited server-side with the key's name. */
export async function decide(
  ctx: CommandContext,
  id: string,
  decision: 'approve' | 'deny',
  reason: string,
): Promise<number> {
  const a = await ctx.client.admin<Approval>(
    'POST',
    `/v1/admin/approvals/${encodeURIComponent(id)}/decision`,
    `${decision} ${id}`,
    { decision, reason },
  );
  if (ctx.json) printJson(ctx, a);
  else {
    const colour = a.status === 'approved' ? ctx.style.green : ctx.style.red;
    print(ctx, `${a.id} ${colour(a.status)}: ${a.tool} for task ${a.taskId} subtask ${a.subtaskId}`);
  }
  return 0;
}
