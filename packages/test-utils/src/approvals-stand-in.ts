// STAND-IN for the orchestrator's approvals API (issue 13 §2), which is built on another branch
// (`approvals`) and is not in this one. It implements exactly that contract from an in-memory list,
// so the CLI's and the dashboard's approvals can be tested before the branches meet; once they have,
// those tests should run against the real orchestrator and this file goes.
//
//   GET  /v1/admin/approvals?status=&limit=&offset= -> 200 { approvals, total, nextOffset }
//   GET  /v1/admin/approvals/{id}                    -> 200 Approval | 404
//   POST /v1/admin/approvals/{id}/decision { decision: approve|deny, reason: 1..500 }
//        -> 200 Approval | 409 FLOTILLA_APPROVAL_DECIDED | 404 | 400 naming the field
// Problems are application/problem+json with a `code`, as packages/orchestrator/src/api/problem.ts.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInApproval {
  id: string;
  status: 'pending' | 'approved' | 'denied' | 'timed_out' | 'cancelled';
  taskId: string;
  subtaskId: string;
  role: string;
  tool: string;
  summary: string;
  owner: string;
  requestedAt: string;
  deadline: string;
  decidedAt: string | null;
  decidedBy: string | null;
  reason: string | null;
  approvers: 'admin';
}

/** A pending approval requested 10 s ago with 290 s left, as a coder's file write would ask for. */
export function standInApproval(id: string, over: Partial<StandInApproval> = {}): StandInApproval {
  return {
    id,
    status: 'pending',
    taskId: '7d0c6a5e-0000-4000-8000-000000000001',
    subtaskId: 's1',
    role: 'coder',
    tool: 'repo.write',
    summary: 'write src/index.ts (120 bytes)',
    owner: 'me',
    requestedAt: new Date(Date.now() - 10_000).toISOString(),
    deadline: new Date(Date.now() + 290_000).toISOString(),
    decidedAt: null,
    decidedBy: null,
    reason: null,
    approvers: 'admin',
    ...over,
  };
}

export interface ApprovalsStandIn {
  url: string;
  /** The list the server answers from: tests set it up and read decisions back from it. */
  approvals: StandInApproval[];
  /** Every request, in order, with the key's name (or null) it came with. */
  requests: { method: string; path: string; body: unknown; by: string | null }[];
  close(): Promise<void>;
}

/**
 * Starts the stand-in on 127.0.0.1. `keys` maps a bearer key to its name and scope; an admin key is
 * needed (401 without a known key, 403 with a tasks key), and its name is who decided.
 */
export async function startApprovalsStandIn(
  keys: Record<string, { name: string; scope: 'admin' | 'tasks' }>,
): Promise<ApprovalsStandIn> {
  const approvals: StandInApproval[] = [];
  const requests: ApprovalsStandIn['requests'] = [];
  const problem = (res: ServerResponse, status: number, code: string, detail: string, errors?: unknown[]) =>
    res
      .writeHead(status, { 'content-type': 'application/problem+json' })
      .end(JSON.stringify({ type: 'about:blank', title: code, status, code, detail, ...(errors && { errors }) }));
  const send = (res: ServerResponse, body: unknown) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const readBody = async (req: IncomingMessage) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    try {
      return raw ? JSON.parse(raw) : undefined;
    } catch {
      return raw;
    }
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const body = req.method === 'POST' ? await readBody(req) : undefined;
    const client = keys[(req.headers.authorization ?? '').replace(/^Bearer /, '')];
    requests.push({ method: req.method ?? '', path: url.pathname, body, by: client?.name ?? null });
    if (!client) return problem(res, 401, 'FLOTILLA_UNAUTHORIZED', 'a valid API key is required');
    if (client.scope !== 'admin')
      return problem(res, 403, 'FLOTILLA_FORBIDDEN', "this key's scope is tasks; this operation needs a admin key");
    if (req.method === 'GET' && url.pathname === '/v1/admin/approvals') {
      const status = url.searchParams.get('status') ?? 'pending';
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const all = approvals.filter((a) => a.status === status);
      const page = all.slice(offset, offset + limit);
      const next = offset + page.length;
      return send(res, { approvals: page, total: all.length, nextOffset: next < all.length ? next : null });
    }
    const one = /^\/v1\/admin\/approvals\/([^/]+)(\/decision)?$/.exec(url.pathname);
    const found = one && approvals.find((x) => x.id === decodeURIComponent(one[1] as string));
    if (one && !found) return problem(res, 404, 'FLOTILLA_NOT_FOUND', `no approval ${one[1]}`);
    if (req.method === 'GET' && one && found && !one[2]) return send(res, found);
    if (req.method === 'POST' && one?.[2] && found) {
      const { decision, reason } = (body ?? {}) as { decision?: unknown; reason?: unknown };
      if (decision !== 'approve' && decision !== 'deny')
        return problem(res, 400, 'FLOTILLA_INVALID_REQUEST', 'the body is not valid', [
          { field: 'decision', message: 'must be approve or deny' },
        ]);
      if (typeof reason !== 'string' || !reason.trim() || reason.length > 500)
        return problem(res, 400, 'FLOTILLA_INVALID_REQUEST', 'the body is not valid', [
          { field: 'reason', message: 'must be 1 to 500 characters' },
        ]);
      if (found.status !== 'pending')
        return problem(
          res,
          409,
          'FLOTILLA_APPROVAL_DECIDED',
          `approval ${found.id} was already ${found.status} by ${found.decidedBy} at ${found.decidedAt}`,
        );
      Object.assign(found, {
        status: decision === 'approve' ? 'approved' : 'denied',
        decidedBy: client.name,
        decidedAt: new Date().toISOString(),
        reason,
      });
      return send(res, found);
    }
    return problem(res, 404, 'FLOTILLA_NOT_FOUND', `no route ${req.method} ${url.pathname}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    approvals,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
