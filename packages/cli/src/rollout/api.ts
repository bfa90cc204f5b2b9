import { VersionFiguresList } from '@flotilla/contracts';
import { CliError, type ClientConfig } from '../client.js';

/**
 * The two admin operations a rollout needs: the figures per version, and the kill switch as a
 * rollback step. An admin key (FLOTILLA_API_KEY or its file), as every operator command.
 */
export class RolloutApi {
  constructor(private readonly config: ClientConfig) {}

  private async call(method: string, path: string, what: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.config.url}${path}`, {
        method,
        headers: {
          ...(this.config.key ? { authorization: `Bearer ${this.config.key}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new CliError(
        'flotilla:unreachable',
        `cannot reach the flotilla API at ${this.config.url} to ${what}`,
        'is the stack up (docker compose ps)? set FLOTILLA_URL to where the orchestrator listens',
        { cause: err },
      );
    }
    const text = await res.text();
    if (res.status === 401 || res.status === 403)
      throw new CliError(
        'flotilla:forbidden',
        `the API refused to ${what} (${res.status}): rollout needs an admin key`,
        'set FLOTILLA_API_KEY (or FLOTILLA_API_KEY_FILE) to a key added with `pnpm -s keys add NAME --admin`',
      );
    if (!res.ok) {
      let detail = text.slice(0, 300);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // Not a problem document: the text as it came.
      }
      throw new CliError('flotilla:http', `${what}: HTTP ${res.status} ${detail}`);
    }
    return JSON.parse(text);
  }

  async versions(role: string, sinceMs: number): Promise<VersionFiguresList> {
    const body = await this.call(
      'GET',
      `/v1/admin/queues/${encodeURIComponent(role)}/versions?since=${Math.floor(sinceMs)}`,
      `read the ${role} figures per version`,
    );
    return VersionFiguresList.parse(body);
  }

  /** Adds `tool` to the kill switch's stopped tools (PATCH replaces the list, so read it first). */
  async stopTool(tool: string, reason: string): Promise<string[]> {
    const current = (await this.call('GET', '/v1/admin/kill-switch', 'read the kill switch')) as { tools: string[] };
    const tools = current.tools.includes(tool) ? current.tools : [...current.tools, tool];
    const after = (await this.call('PATCH', '/v1/admin/kill-switch', 'turn the tool off', { tools, reason })) as {
      tools: string[];
    };
    return after.tools;
  }
}
