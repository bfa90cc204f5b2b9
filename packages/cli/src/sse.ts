import { TaskEvent } from '@flotilla/contracts';
import { parseWatchEvent, type WatchEvent } from './approval-events.js';

interface StreamOptions {
  token?: string;
  signal?: AbortSignal;
}

/**
 * Reads a Server-Sent Events stream until it ends or `signal` aborts, yielding each `data:` payload
 * that `parse` accepts. Small on purpose: the orchestrator only sends `id:` and `data:` lines.
 */
async function* sseData<T>(
  url: string,
  parse: (raw: unknown) => T | undefined,
  { token, signal }: StreamOptions,
): AsyncGenerator<T> {
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    signal,
  });
  if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      const parsed = parse(JSON.parse(data));
      if (parsed !== undefined) yield parsed;
    }
  }
}

/** A task's events (GET /v1/tasks/:id/events), each parsed as a TaskEvent; others are skipped. */
export function taskEvents(url: string, opts: StreamOptions = {}): AsyncGenerator<TaskEvent> {
  return sseData(
    url,
    (raw) => {
      const parsed = TaskEvent.safeParse(raw);
      return parsed.success ? parsed.data : undefined;
    },
    opts,
  );
}

/** The same stream with the approval events too: what `submit --watch` shows. */
export function watchEvents(url: string, opts: StreamOptions = {}): AsyncGenerator<WatchEvent> {
  return sseData(url, parseWatchEvent, opts);
}
