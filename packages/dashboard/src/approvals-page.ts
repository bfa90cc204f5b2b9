import type { Logger } from '@flotilla/runtime';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Approval, ApprovalsClient } from './approvals-client.js';
import { operatorOf } from './auth.js';

// The approvals panel: the tool calls waiting for a person, each with Approve / Deny and a reason.
// Server-rendered HTML and plain forms (no script): it works in any browser, behind the same admin
// key as the board, and a decision is one POST the orchestrator's API records and audits.

export interface ApprovalsPageOptions {
  /** The orchestrator's approvals API; undefined when ORCHESTRATOR_URL is not set (the page says how to connect it). */
  client?: ApprovalsClient;
  /** The board's base path without a trailing slash ('' for /). */
  prefix: string;
  log: Logger;
}

/** The API caps a reason at 500 characters; the operator's part is cut to leave room for who decided. */
const REASON_MAX = 500;

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

function timeLeft(deadline: string, now: number): string {
  const ms = Date.parse(deadline) - now;
  if (!(ms > 0)) return 'overdue';
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `in ${s}s` : `in ${Math.floor(s / 60)}m ${s % 60}s`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2430}
header{background:#1d2430;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:18px;margin:0}header a{color:#9cc3ff}
main{padding:16px 24px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{text-align:left;padding:10px 12px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#5b6472}
code{font:13px ui-monospace,monospace}
.dim{color:#5b6472;font-size:12px}.overdue{color:#b42318;font-weight:600}
form{display:flex;gap:8px}td time,td:nth-child(4){white-space:nowrap}
input[name=reason]{flex:1;min-width:180px;padding:6px 8px;border:1px solid #c5cad3;border-radius:4px}
button{padding:6px 14px;border:0;border-radius:4px;color:#fff;cursor:pointer;font-weight:600}
button[value=approve]{background:#1a7f37}button[value=deny]{background:#b42318}
.flash{padding:10px 14px;border-radius:4px;margin-bottom:12px}
.flash.ok{background:#dafbe1;color:#1a7f37}.flash.error{background:#ffebe9;color:#b42318}
.empty{padding:24px;background:#fff;color:#5b6472}`;

function page(prefix: string, body: string, flash?: { kind: 'ok' | 'error'; text: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Approvals · flotilla</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body><header><h1>Approvals waiting</h1><a href="${prefix}/">Queues</a><a href="${prefix}/approvals">Refresh</a></header>
<main>${flash ? `<p class="flash ${flash.kind}" role="status">${esc(flash.text)}</p>` : ''}${body}</main></body></html>`;
}

function row(a: Approval, prefix: string, now: number): string {
  const left = timeLeft(a.deadline, now);
  return `<tr id="approval-${esc(a.id)}">
<td><code>${esc(a.tool)}</code><div class="dim">${esc(a.role)}</div></td>
<td>${esc(a.summary)}</td>
<td><code>${esc(a.taskId)}</code><div class="dim">subtask ${esc(a.subtaskId)} · tenant ${esc(a.owner)}</div></td>
<td><time datetime="${esc(a.deadline)}" class="${left === 'overdue' ? 'overdue' : ''}">${left}</time><div class="dim">${esc(a.deadline.slice(11, 19))} UTC</div></td>
<td><form method="post" action="${prefix}/approvals/${encodeURIComponent(a.id)}/decision">
<input name="reason" required maxlength="400" placeholder="why (recorded with your name)" aria-label="reason for ${esc(a.id)}">
<button name="decision" value="approve">Approve</button><button name="decision" value="deny">Deny</button>
</form></td></tr>`;
}

/**
 * A browser sends Basic credentials with any request to this origin, including a form another site
 * posts: refuse a POST that a browser marks as cross-site, or whose Origin is not this host.
 */
function crossSite(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return true;
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}

export function registerApprovalsPage(scope: FastifyInstance, { client, prefix, log }: ApprovalsPageOptions): void {
  // Forms post urlencoded bodies; fastify parses only JSON by itself. URLSearchParams is the parser.
  scope.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 8192 },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );

  scope.get(`${prefix}/approvals`, async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const flash = query.ok
      ? { kind: 'ok' as const, text: query.ok }
      : query.error
        ? { kind: 'error' as const, text: query.error }
        : undefined;
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store');
    if (!client) {
      return page(
        prefix,
        '<p class="empty">Approvals are not connected: set ORCHESTRATOR_URL and DASHBOARD_API_KEY_FILE (an admin API key) on the dashboard.</p>',
        flash,
      );
    }
    const listed = await client.pending();
    if (!listed.ok) {
      log.warn({ code: listed.code, message: listed.message }, 'approvals: cannot list');
      return page(prefix, `<p class="empty">Cannot list approvals: ${esc(listed.message)}</p>`, flash);
    }
    const { approvals, total } = listed.value;
    if (approvals.length === 0)
      return page(prefix, '<p class="empty">No tool call is waiting for approval.</p>', flash);
    const now = Date.now();
    return page(
      prefix,
      `<table><thead><tr><th>Tool</th><th>Summary</th><th>Task</th><th>Deadline</th><th>Decision</th></tr></thead>
<tbody>${approvals.map((a) => row(a, prefix, now)).join('')}</tbody></table>${
        total > approvals.length ? `<p class="dim">${approvals.length} of ${total} shown, oldest first.</p>` : ''
      }`,
      flash,
    );
  });

  scope.post(`${prefix}/approvals/:id/decision`, async (request, reply: FastifyReply) => {
    const back = (kind: 'ok' | 'error', text: string) =>
      reply.redirect(`${prefix}/approvals?${new URLSearchParams({ [kind]: text })}`, 303);
    if (crossSite(request))
      return reply
        .code(403)
        .send({ code: 'FLOTILLA_DASHBOARD_CROSS_SITE', message: 'cross-site form posts are refused' });
    if (!client) return back('error', 'approvals are not connected (ORCHESTRATOR_URL)');
    const { id } = request.params as { id: string };
    const form = (request.body ?? {}) as Record<string, string | undefined>;
    const decision = form.decision;
    const reason = (form.reason ?? '').trim();
    if (decision !== 'approve' && decision !== 'deny') return back('error', 'decision: choose Approve or Deny');
    if (!reason) return back('error', 'reason: say why (it is recorded)');
    // The API records the dashboard's key as who decided; the reason carries the operator whose
    // admin key opened the page, so the audit names a person.
    const operator = operatorOf(request) ?? 'unknown';
    const suffix = ` (dashboard, by ${operator})`;
    const outcome = await client.decide(id, decision, reason.slice(0, REASON_MAX - suffix.length) + suffix);
    log.info(
      { audit: 'dashboard', action: 'approval_decision', by: operator, approvalId: id, decision, ok: outcome.ok },
      'approval decision',
    );
    if (!outcome.ok) return back('error', `${id}: ${outcome.message}`);
    return back('ok', `${id} ${outcome.value.status}: ${outcome.value.tool} for task ${outcome.value.taskId}`);
  });
}
