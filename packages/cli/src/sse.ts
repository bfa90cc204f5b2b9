import { TaskEvent } from '@flotilla/contracts';

/**
 * Reads a task's Server-Sent Events until the stream ends or `signal` aborts, yielding each
 * parsed TaskEvent. Small on purpose: the orchestrator only sends `id:` and `data:` lines.
 */
export async function* taskEvents(
  url: string,
  { token, signal }: { token?: string; signal?: AbortSignal } = {},
): AsyncGenerator<TaskEvent> {
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
      const parsed = TaskEvent.safeParse(JSON.parse(data));
      if (parsed.success) yield parsed.data;
    }
  }
}
