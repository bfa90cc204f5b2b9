import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeStep } from './steps.js';

/** One request the fake received, as sent. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, or the raw text when it was not JSON. */
  body: unknown;
}

/** Consulted before the script; return undefined to fall through to it. */
export type FakeHandler = (request: RecordedRequest) => FakeStep | undefined;

export interface FakeOptions {
  /**
   * Every chat answer is sent this many ms after its request arrived, as a vendor's model takes time
   * to answer (the bench's scaling figure). Embeddings still answer at once. Default 0.
   */
  delayMs?: number;
  /**
   * Keep every request in `requests`. Default true; a benchmark sending thousands of requests turns it
   * off so the fake does not grow for the whole run.
   */
  keepRequests?: boolean;
}

export interface FakeVendor {
  /** Base URL, `http://127.0.0.1:<port>` (no /v1). */
  url: string;
  /** Every request received, in order (chat and embeddings); empty when `keepRequests` is false. */
  readonly requests: RecordedRequest[];
  /** Queues steps for the next chat requests; a step with `repeat` stays at the head. */
  script(...steps: FakeStep[]): void;
  /** Drops any in-flight (hanging) connections and stops listening. Idempotent. */
  close(): Promise<void>;
}

export type Send = (res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>) => void;

export interface Routes {
  /** Answers one chat request with one step. */
  chat(step: FakeStep, request: RecordedRequest, res: ServerResponse, send: Send, seq: number): void;
  chatPath: string;
  /** Other endpoints (embeddings); return false for 404. */
  other?(request: RecordedRequest, res: ServerResponse, send: Send): boolean;
}

const send: Send = (res, status, body, headers = {}) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
};

/** Loopback HTTP server with a step queue, shared by the OpenAI and Anthropic fakes. */
export async function startFake(routes: Routes, handler?: FakeHandler, options: FakeOptions = {}): Promise<FakeVendor> {
  const { delayMs = 0, keepRequests = true } = options;
  const requests: RecordedRequest[] = [];
  const queue: FakeStep[] = [];
  let seq = 0;
  // Delayed answers not sent yet, so close() can drop them along with their connections.
  const pending = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {}
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: (req.url ?? '/').split('?')[0] ?? '/',
        headers: req.headers,
        body,
      };
      if (keepRequests) requests.push(recorded);
      if (recorded.method === 'POST' && recorded.path === routes.chatPath) {
        const step = handler?.(recorded) ??
          (queue[0]?.repeat ? queue[0] : queue.shift()) ?? { kind: 'text', text: 'ok' };
        const n = ++seq;
        if (delayMs === 0) return routes.chat(step, recorded, res, send, n);
        const timer = setTimeout(() => {
          pending.delete(timer);
          routes.chat(step, recorded, res, send, n);
        }, delayMs);
        pending.add(timer);
        return;
      }
      if (routes.other?.(recorded, res, send)) return;
      send(res, 404, { error: { message: `no route ${recorded.method} ${recorded.path}` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script: (...steps) => {
      queue.push(...steps);
    },
    close() {
      // A hanging response keeps its socket open forever; close() alone would wait for it.
      closing ??= new Promise<void>((resolve) => {
        for (const timer of pending) clearTimeout(timer);
        pending.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Rough token count the fakes report: one per four characters, like a tokenizer on English. */
export const approxTokens = (value: unknown) => Math.max(1, Math.ceil(JSON.stringify(value ?? '').length / 4));

/**
 * A deterministic, somewhat lexical embedding: words hashed into `dims` buckets, L2-normalised,
 * so texts sharing words are close (enough for memory tests to rank results).
 */
export function fakeEmbedding(text: string, dims = 16): number[] {
  const v = new Array<number>(dims).fill(0);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? ['']) {
    const h = createHash('sha256').update(word).digest();
    const i = (h[0] ?? 0) % dims;
    v[i] = (v[i] ?? 0) + ((h[1] ?? 0) % 2 === 0 ? 1 : -1);
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}
