import type { QueueStats, RoleReplicas } from '@flotilla/contracts';
import { UsageError } from './errors.js';
import { cut, duration, fit, table, when } from './format.js';
import { type CommandContext, print, printJson } from './io.js';

// The operator's commands (admin key): replicas, queues, failed jobs and their retry, the kill
// switch. The wire shapes are the orchestrator's (packages/orchestrator/src/api/operator-schemas.ts);
// the CLI reads only the fields it shows, so a field added there breaks nothing here.

interface FailedJobPage {
  jobs: {
    jobId: string;
    failedReason: string;
    attemptsMade: number;
    failedAt: string | null;
    taskId: string | null;
    subtaskId: string | null;
  }[];
  total: number;
  nextOffset: number | null;
}

export interface KillSwitchView {
  global: boolean;
  noWrites: boolean;
  tools: string[];
  lastChange: { by: string; reason: string; at: string } | null;
}

const path = encodeURIComponent;

/** `flotilla roles`: every registered role, its replicas, whether each is live, its heartbeat age and image version. */
export async function roles(ctx: CommandContext): Promise<number> {
  const body = await ctx.client.admin<{ roles: RoleReplicas[] }>('GET', '/v1/admin/replicas', 'list the replicas');
  if (ctx.json) {
    printJson(ctx, body);
    return 0;
  }
  if (body.roles.length === 0) {
    print(ctx, ctx.style.dim('no role has registered (are the workers running?)'));
    return 0;
  }
  const { style } = ctx;
  for (const r of body.roles) {
    const live = r.replicas.filter((x) => x.live).length;
    const versions = [...new Set(r.replicas.filter((x) => x.live).map((x) => x.version))];
    // At zero, a role that scales to zero is idle rather than down: the next job for it starts one.
    const idle = live === 0 && r.scalesToZero === true;
    const count = `${live}/${r.replicas.length} live${r.scalesToZero ? ', scales to zero' : ''}`;
    print(
      ctx,
      `${style.bold(r.role)}  ${(idle ? style.yellow : live === 0 ? style.red : style.green)(count)}${versions.length > 1 ? style.yellow(`  ${versions.length} versions`) : ''}  ${style.dim(cut(r.description, 60))}`,
    );
    const rows = r.replicas.map((x) => [
      `  ${x.replica}`,
      x.live ? 'live' : 'stale',
      `${duration(x.heartbeatAgeMs)} ago`,
      x.version,
    ]);
    const lines = table(['  REPLICA', 'STATE', 'HEARTBEAT', 'VERSION'], rows, (cell, row, col) =>
      col === 1 ? (r.replicas[row]?.live ? style.green : style.red)(cell) : cell,
    );
    print(ctx, [style.dim(lines[0] as string), ...lines.slice(1)]);
  }
  return 0;
}

/** Jobs per minute over the minutes BullMQ reports (newest first), or '-' before any. */
const perMinute = (counts: number[]) =>
  counts.length === 0 ? '-' : (counts.reduce((a, b) => a + b, 0) / counts.length).toFixed(1);

/** `flotilla queues`: each role's queue counts, recent throughput and job time. */
export async function queues(ctx: CommandContext): Promise<number> {
  const body = await ctx.client.admin<{ queues: QueueStats[] }>('GET', '/v1/admin/queues', 'read the queues');
  if (ctx.json) {
    printJson(ctx, body);
    return 0;
  }
  if (body.queues.length === 0) {
    print(ctx, ctx.style.dim('no role queues yet (no role has registered)'));
    return 0;
  }
  const rows = body.queues.map((q) => [
    q.role,
    String(q.waiting),
    String(q.active),
    String(q.delayed),
    String(q.failed),
    String(q.completed),
    perMinute(q.throughput.completedPerMinute),
    perMinute(q.throughput.failedPerMinute),
    q.jobMs ? duration(q.jobMs.p50) : '-',
    q.jobMs ? duration(q.jobMs.p95) : '-',
  ]);
  const { style } = ctx;
  const lines = table(
    ['ROLE', 'WAITING', 'ACTIVE', 'DELAYED', 'FAILED', 'COMPLETED', 'DONE/MIN', 'FAILED/MIN', 'P50', 'P95'],
    rows,
    (cell, row, col) => (col === 4 && (body.queues[row]?.failed ?? 0) > 0 ? style.red(cell) : cell),
  );
  print(ctx, [style.dim(lines[0] as string), ...lines.slice(1)]);
  print(
    ctx,
    style.dim('per minute: the mean over the last minutes BullMQ measured; P50/P95: the latest completed jobs'),
  );
  return 0;
}

/** `flotilla failed <role>`: the role's failed jobs, newest first, with why each failed. */
export async function failedJobs(ctx: CommandContext, role: string, opts: { limit?: number }): Promise<number> {
  const q = new URLSearchParams(opts.limit ? { limit: String(opts.limit) } : {});
  const body = await ctx.client.admin<FailedJobPage>(
    'GET',
    `/v1/admin/queues/${path(role)}/failed${q.size ? `?${q}` : ''}`,
    `list the failed jobs of ${role}`,
  );
  if (ctx.json) {
    printJson(ctx, body);
    return 0;
  }
  if (body.jobs.length === 0) {
    print(ctx, ctx.style.dim(`no failed jobs in the ${role} queue`));
    return 0;
  }
  const width = Math.max(60, ctx.out.columns ?? 120);
  const rows = body.jobs.map((j) => [
    j.jobId,
    String(j.attemptsMade),
    when(j.failedAt),
    j.failedReason.replace(/\s+/g, ' '),
  ]);
  const lines = table(['JOB', 'ATTEMPTS', 'FAILED AT', 'REASON'], rows);
  // The reason goes last and is cut to the terminal, so one job stays one line.
  print(ctx, [ctx.style.dim(lines[0] as string), ...lines.slice(1).map((l) => fit(l, width))]);
  print(
    ctx,
    ctx.style.dim(`${body.jobs.length} of ${body.total}; put one back in its queue with: flotilla retry ${role} <JOB>`),
  );
  return 0;
}

/**
 * `retry` takes `<role> <jobId>` or `<role>/<jobId>` (as a failed list is pasted): a role has no
 * slash and a job id has none, so the first slash splits them.
 */
export function retryTarget(positionals: string[]): { role: string; jobId: string } {
  const [first, second] = positionals;
  if (positionals.length === 1 && first?.includes('/')) {
    const at = first.indexOf('/');
    const role = first.slice(0, at);
    const jobId = first.slice(at + 1);
    if (role && jobId) return { role, jobId };
  }
  if (positionals.length === 2 && first && second) return { role: first, jobId: second };
  throw new UsageError('retry needs a ROLE and a JOB id: flotilla retry researcher <JOB> (or researcher/<JOB>)');
}

/** `flotilla retry <role> <jobId>`: a failed job back in its queue (the API audits who did it). */
export async function retryJob(ctx: CommandContext, role: string, jobId: string): Promise<number> {
  const body = await ctx.client.admin<{ role: string; jobId: string; state: string }>(
    'POST',
    `/v1/admin/queues/${path(role)}/jobs/${path(jobId)}/retry`,
    `retry job ${jobId} of ${role}`,
  );
  if (ctx.json) printJson(ctx, body);
  else print(ctx, `${body.jobId} is ${ctx.style.cyan(body.state)} in the ${body.role} queue again`);
  return 0;
}

export function renderKillSwitch(ks: KillSwitchView, ctx: Pick<CommandContext, 'style'>): string[] {
  const { style } = ctx;
  const state = (on: boolean) => (on ? style.red('ON ') : style.green('off'));
  const lines = [
    `global  ${state(ks.global)}  ${style.dim('every tool')}`,
    `writes  ${state(ks.noWrites)}  ${style.dim("every tool with sideEffects 'write'")}`,
    `tools   ${ks.tools.length ? style.red(ks.tools.join(', ')) : style.dim('none switched off')}`,
  ];
  if (ks.lastChange)
    lines.push(
      style.dim(`last change ${when(ks.lastChange.at)} by ${ks.lastChange.by}: ${cut(ks.lastChange.reason, 200)}`),
    );
  return lines;
}

/** `flotilla kill-switch`: what is switched off, and who changed it last and why. */
export async function showKillSwitch(ctx: CommandContext): Promise<number> {
  const ks = await ctx.client.admin<KillSwitchView>('GET', '/v1/admin/kill-switch', 'read the kill switch');
  if (ctx.json) printJson(ctx, ks);
  else print(ctx, renderKillSwitch(ks, ctx));
  return 0;
}

export interface KillSwitchChange {
  on: boolean;
  /** Tools (names or globs) to switch on/off one by one; empty for the global or writes switch. */
  tools: string[];
  writes: boolean;
  reason: string;
}

/**
 * `flotilla kill-switch on|off [--tool T | --writes] --reason R`. Without --tool or --writes it is
 * the global switch. The API takes the complete list of stopped tools, so --tool reads the list
 * and sends it with T added or removed: another operator's tools stay as they were (a change
 * between the read and the write would be lost, and both are audited with who and why).
 */
export async function setKillSwitch(ctx: CommandContext, change: KillSwitchChange): Promise<number> {
  let patch: { global?: boolean; noWrites?: boolean; tools?: string[] };
  if (change.tools.length > 0) {
    const current = await ctx.client.admin<KillSwitchView>('GET', '/v1/admin/kill-switch', 'read the kill switch');
    const tools = change.on
      ? [...new Set([...current.tools, ...change.tools])]
      : current.tools.filter((t) => !change.tools.includes(t));
    const untouched = change.on
      ? change.tools.filter((t) => current.tools.includes(t))
      : change.tools.filter((t) => !current.tools.includes(t));
    if (untouched.length === change.tools.length) {
      // Nothing would change: no audit record for a no-op, and say why.
      if (ctx.json) printJson(ctx, current);
      else
        print(
          ctx,
          `${untouched.join(', ')} ${change.on ? 'already switched off' : 'not switched off'}; nothing changed`,
        );
      return 0;
    }
    patch = { tools };
  } else patch = change.writes ? { noWrites: change.on } : { global: change.on };
  const ks = await ctx.client.admin<KillSwitchView>('PATCH', '/v1/admin/kill-switch', 'change the kill switch', {
    ...patch,
    reason: change.reason,
  });
  if (ctx.json) printJson(ctx, ks);
  else print(ctx, renderKillSwitch(ks, ctx));
  return 0;
}
