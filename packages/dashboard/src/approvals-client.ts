import type { Approval } from '@flotilla/contracts';

// The orchestrator's approvals API as the dashboard calls it (admin scope, its own key). The API is
// the one place a decision is made: it audits who decided, resumes the subtask exactly once and
// answers 409 to the second of two decisions, so the dashboard never writes approval records itself.
//   GET  /v1/admin/approvals?status=pending -> { approvals, total, nextOffset }
//   POST /v1/admin/approvals/{id}/decision { decision, reason } -> Approval | 409 | 404 | 400

export type { Approval };

/** Why a call did not give what was asked: data the page shows, not an exception. */
export type ApiFailure = {
  ok: false;
  /** decided: someone decided first (409); unreachable: no answer; refused: the dashboard's key was not accepted. */
  code: 'decided' | 'not_found' | 'invalid' | 'refused' | 'unreachable' | 'error';
  message: string;
};

export type ApiOutcome<T> = { ok: true; value: T } | ApiFailure;

export interface ApprovalsClientOptions {
  /** ORCHESTRATOR_URL, e.g. http://orchestrator:8080. */
  url: string;
  /** The dashboard's admin API key (DASHBOARD_API_KEY_FILE). Never logged or shown. */
  key: string;
  /** Per request. Default 5000 ms: a page waits on it. */
  timeoutMs?: number;
}

export class ApprovalsClient {
  private readonly base: string;
  constructor(private readonly options: ApprovalsClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  /** Where it calls, for the page and logs (the URL holds no secret: the key travels in a header). */
  get url(): string {
    return this.base;
  }

  private async call<T>(path: string, init: RequestInit = {}): Promise<ApiOutcome<T>> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        ...init,
        headers: { ...init.headers, authorization: `Bearer ${this.options.key}` },
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      return { ok: false, code: 'unreachable', message: `the orchestrator at ${this.base} did not answer (${cause})` };
    }
    if (res.ok) return { ok: true, value: (await res.json()) as T };
    const problem = (await res.json().catch(() => ({}))) as {
      detail?: string;
      errors?: { field: string; message: string }[];
    };
    const detail = [problem.detail, ...(problem.errors ?? []).map((e) => `${e.field} ${e.message}`)]
      .filter(Boolean)
      .join('; ');
    const code =
      res.status === 409
        ? 'decided'
        : res.status === 404
          ? 'not_found'
          : res.status === 400
            ? 'invalid'
            : res.status === 401 || res.status === 403
              ? 'refused'
              : 'error';
    const message =
      code === 'refused'
        ? `the orchestrator refused the dashboard's key (${res.status}): DASHBOARD_API_KEY_FILE must hold an admin key of its keys file`
        : detail || `HTTP ${res.status}`;
    return { ok: false, code, message };
  }

  /** The pending approvals, oldest first, up to 100 (the page says when there are more). */
  pending(): Promise<ApiOutcome<{ approvals: Approval[]; total: number }>> {
    return this.call('/v1/admin/approvals?status=pending&limit=100');
  }

  decide(id: string, decision: 'approve' | 'deny', reason: string): Promise<ApiOutcome<Approval>> {
    return this.call(`/v1/admin/approvals/${encodeURIComponent(id)}/decision`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ decision, reason }),
    });
  }
}
