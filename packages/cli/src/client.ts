import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type TaskBudget, type TaskPage, type TaskRequestInput, type TaskStatus, TaskView } from '@flotilla/contracts';
import type { WatchEvent } from './approval-events.js';
import { watchEvents } from './sse.js';

/** Where the API is when FLOTILLA_URL is not set: `pnpm dev`'s mesh and the compose stack's port. */
export const DEFAULT_URL = 'http://127.0.0.1:8080';
/** The quick start writes a key here (`pnpm -s keys add me > .flotilla-key`). */
export const DEFAULT_KEY_FILE = '.flotilla-key';

/** How to fix a missing or refused key: the three places a key is read from, in order. */
const KEY_HINT = `set FLOTILLA_API_KEY, or FLOTILLA_API_KEY_FILE to a file holding the key, or write it to ./${DEFAULT_KEY_FILE} (pnpm -s keys add me > ${DEFAULT_KEY_FILE})`;

/**
 * An error the CLI reports as one line (no stack): what went wrong, then what to do about it.
 * `code` is stable (tests and scripts match on it); the exit status is 1.
 */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Which kind of key a route wants: a tenant's (tasks) or an operator's (admin). */
type KeyScope = 'tasks' | 'admin';

export interface ClientConfig {
  url: string;
  key?: string;
  /** Where the key came from, for error messages: never the key itself. */
  keySource?: string;
}

/** FLOTILLA_URL and the key: FLOTILLA_API_KEY, else FLOTILLA_API_KEY_FILE, else ./.flotilla-key if present. */
export function resolveConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ClientConfig {
  const raw = env.FLOTILLA_URL || DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new CliError('flotilla:bad_url', `FLOTILLA_URL is not a URL: ${raw}`, `e.g. ${DEFAULT_URL}`, { cause });
  }
  const base = url.href.replace(/\/+$/, '');
  if (env.FLOTILLA_API_KEY) return { url: base, key: env.FLOTILLA_API_KEY.trim(), keySource: 'FLOTILLA_API_KEY' };
  const file = env.FLOTILLA_API_KEY_FILE
    ? resolve(cwd, env.FLOTILLA_API_KEY_FILE)
    : existsSync(resolve(cwd, DEFAULT_KEY_FILE))
      ? resolve(cwd, DEFAULT_KEY_FILE)
      : undefined;
  if (!file) return { url: base };
  const source = env.FLOTILLA_API_KEY_FILE ? `FLOTILLA_API_KEY_FILE (${file})` : file;
  let key: string;
  try {
    key = readFileSync(file, 'utf8').trim();
  } catch (cause) {
    throw new CliError('flotilla:key_file', `cannot read the key file ${source}`, KEY_HINT, { cause });
  }
  // An empty file (a failed `keys add > .flotilla-key`) would send no key and read as "no key".
  if (!key) throw new CliError('flotilla:key_file', `the key file ${source} is empty`, KEY_HINT);
  return { url: base, key, keySource: source };
}

/** Why fetch failed, in words: the cause's errno code when there is one. */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused';
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return 'host not found';
  if ((err as Error).name === 'TimeoutError') return 'no answer in time';
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

export interface Submitted {
  taskId: string;
  status: TaskStatus;
  /** false when an idempotency key replayed an existing task (HTTP 200 instead of 202). */
  created: boolean;
  body: unknown;
}

/** The orchestrator's task API as the CLI uses it: every failure becomes a CliError that says what to do. */
export class ApiClient {
  constructor(readonly config: ClientConfig) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.config.key ? { authorization: `Bearer ${this.config.key}` } : {}), ...extra };
  }

  private unreachable(err: unknown): CliError {
    return new CliError(
      'flotilla:unreachable',
      `cannot reach the flotilla API at ${this.config.url} (${networkReason(err)})`,
      'start the stack with `pnpm dev` (a local mesh on :8080) or `docker compose up`, or set FLOTILLA_URL to where it runs',
      { cause: err },
    );
  }

  /** Turns a non-2xx answer into a CliError; the problem document's detail when there is one. */
  private async failure(res: Response, what: string, taskId?: string, scope: KeyScope = 'tasks'): Promise<CliError> {
    const text = await res.text().catch(() => '');
    let detail = text.slice(0, 500);
    try {
      const problem = JSON.parse(text) as { detail?: string; errors?: { field: string; message: string }[] };
      detail = [problem.detail, ...(problem.errors ?? []).map((e) => `${e.field} ${e.message}`)]
        .filter(Boolean)
        .join('; ');
    } catch {
      // Not JSON (a proxy's page): the text as it came.
    }
    if (res.status === 401) {
      return new CliError(
        'flotilla:unauthorized',
        this.config.key
          ? `the API at ${this.config.url} refused the key from ${this.config.keySource} (401)`
          : `the API at ${this.config.url} wants an API key and none was sent (401)`,
        KEY_HINT,
      );
    }
    if (res.status === 403) {
      return scope === 'admin'
        ? new CliError(
            'flotilla:forbidden',
            `the key from ${this.config.keySource} may not ${what}: operator commands need an admin key (403: ${detail})`,
            `make one with \`pnpm -s keys add NAME --admin > admin.key\` and run with FLOTILLA_API_KEY_FILE=admin.key`,
          )
        : new CliError(
            'flotilla:forbidden',
            `the key from ${this.config.keySource} may not ${what} (403: ${detail})`,
            'use a key with the tasks scope (pnpm -s keys add NAME)',
          );
    }
    if (res.status === 404 && taskId) {
      return new CliError(
        'flotilla:not_found',
        `no task ${taskId} for this key`,
        'list yours with `flotilla tasks`; a task is visible only to the key (tenant) that submitted it',
      );
    }
    if (res.status === 404 && scope === 'admin') {
      return new CliError('flotilla:not_found', `cannot ${what}: ${detail || 'not found (404)'}`);
    }
    if (res.status === 409) {
      return new CliError('flotilla:conflict', `cannot ${what}: ${detail || 'conflict (409)'}`);
    }
    return new CliError('flotilla:http', `${what}: HTTP ${res.status}${detail ? ` ${detail}` : ''}`);
  }

  private async request(
    path: string,
    init: RequestInit,
    what: string,
    taskId?: string,
    scope: KeyScope = 'tasks',
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.config.url}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (!res.ok) throw await this.failure(res, what, taskId, scope);
    return res;
  }

  /**
   * One call to an operator (admin scope) route: its JSON body, or a CliError whose 403 says an admin
   * key is needed and whose 404/409 carry the API's detail. `what` completes "cannot ...".
   */
  async admin<T>(method: 'GET' | 'POST' | 'PATCH', path: string, what: string, body?: unknown): Promise<T> {
    const res = await this.request(
      path,
      {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(body !== undefined && { body: JSON.stringify(body) }),
      },
      what,
      undefined,
      'admin',
    );
    return (await res.json()) as T;
  }

  async submit(
    goal: string,
    opts: { budget?: TaskBudget; idempotencyKey?: string; metadata?: TaskRequestInput['metadata'] } = {},
  ): Promise<Submitted> {
    const res = await this.request(
      '/v1/tasks',
      {
        method: 'POST',
        headers: this.headers({
          'content-type': 'application/json',
          ...(opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {}),
        }),
        body: JSON.stringify({ goal, ...(opts.budget && { budget: opts.budget }), metadata: opts.metadata }),
      },
      'submit a task',
    );
    const body = (await res.json()) as { taskId: string; status: TaskStatus };
    return { taskId: body.taskId, status: body.status, created: res.status === 202, body };
  }

  /** Newest first, following cursors until `limit` tasks or the last page. */
  async list({ status = [], limit = 20 }: { status?: string[]; limit?: number } = {}): Promise<TaskPage> {
    const tasks: TaskPage['tasks'] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ limit: String(Math.min(limit - tasks.length, 100)) });
      for (const s of status) q.append('status', s);
      if (cursor) q.set('cursor', cursor);
      const res = await this.request(`/v1/tasks?${q}`, { headers: this.headers() }, 'list tasks');
      const page = (await res.json()) as TaskPage;
      tasks.push(...page.tasks);
      cursor = page.nextCursor;
    } while (cursor && tasks.length < limit);
    return { tasks, nextCursor: cursor };
  }

  async get(taskId: string): Promise<TaskView> {
    const res = await this.request(
      `/v1/tasks/${encodeURIComponent(taskId)}`,
      { headers: this.headers() },
      'read the task',
      taskId,
    );
    return TaskView.parse(await res.json());
  }

  async cancel(taskId: string): Promise<TaskView> {
    const res = await this.request(
      `/v1/tasks/${encodeURIComponent(taskId)}/cancel`,
      { method: 'POST', headers: this.headers() },
      'cancel the task',
      taskId,
    );
    return TaskView.parse(await res.json());
  }

  /** The task's events from its first, until the terminal one (the server then ends the stream). */
  async *events(taskId: string): AsyncGenerator<WatchEvent> {
    try {
      yield* watchEvents(`${this.config.url}/v1/tasks/${encodeURIComponent(taskId)}/events`, {
        token: this.config.key,
      });
    } catch (err) {
      // An HTTP status from the stream (its 401/404 were ruled out by a read before it) is not a
      // network failure; anything else is the connection going away.
      if (err instanceof Error && err.message.startsWith('events: HTTP')) {
        throw new CliError('flotilla:http', `task ${taskId} ${err.message}`);
      }
      throw this.unreachable(err);
    }
  }
}
