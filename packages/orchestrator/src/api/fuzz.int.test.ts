// Needs a real Redis behind a real listening server: the claim under test is that no request body,
// header or path, however malformed, makes the running service answer 5xx or fall over.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ llm: offlineLlm(), autorun: false, listen: true });
});
afterAll(async () => {
  await h?.close();
});

interface FuzzRequest {
  method: 'POST' | 'GET' | 'DELETE' | 'PUT' | 'PATCH' | 'OPTIONS';
  path: string;
  contentType: string | undefined;
  body: string | undefined;
  headers: Record<string, string>;
}

const pollution = fc.constantFrom(
  '{"goal":"x","__proto__":{"admin":true}}',
  '{"goal":"x","metadata":{"__proto__":{"admin":true}}}',
  '{"goal":"x","constructor":{"prototype":{"admin":true}}}',
  '{"goal":"x","budget":{"__proto__":{"maxSteps":1}}}',
  '{"goal":"x","metadata":{"constructor":"y","prototype":"z","toString":"w"}}',
  '{"__proto__":null}',
);
const hugeNumbers = fc
  .record({
    maxSteps: fc.oneof(fc.double(), fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -0, 0.5)),
    maxTokens: fc.oneof(
      fc.integer(),
      fc.bigInt().map((b) => b.toString()),
    ),
    maxSeconds: fc.oneof(fc.double(), fc.string()),
  })
  .map((budget) => JSON.stringify({ goal: 'numbers', budget }).replace(/"(-?\d{16,})"/g, '$1'));
const nearlyValid = fc
  .record(
    {
      goal: fc.oneof(fc.string({ maxLength: 50 }), fc.constant(''), fc.constant('  '), fc.integer()),
      budget: fc.dictionary(
        fc.constantFrom('maxSteps', 'maxToolCalls', 'maxSeconds', 'maxTokens', 'maxFun'),
        fc.anything(),
      ),
      idempotencyKey: fc.oneof(fc.string(), fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/)),
      metadata: fc.dictionary(fc.string({ maxLength: 70 }), fc.anything(), { maxKeys: 40 }),
      v: fc.oneof(fc.constant(1), fc.integer()),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));
const anythingJson = fc.anything().map((v) => {
  try {
    return JSON.stringify(v) ?? 'null';
  } catch {
    return 'null';
  }
});
const body = fc.oneof(
  anythingJson,
  fc.json(),
  fc.string(),
  fc.string({ unit: 'binary' }),
  pollution,
  hugeNumbers,
  nearlyValid,
  fc.constant(''),
  fc.constant('{'.repeat(5000)),
);
const contentType = fc.oneof(
  fc.constant('application/json'),
  fc.constant('application/json; charset=utf-8'),
  fc.constantFrom(
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/json; charset=latin-9',
    '*/*',
    ';;',
  ),
  fc.constant(undefined),
  fc.string({ maxLength: 30 }),
);
const path = fc.oneof(
  fc.constant('/v1/tasks'),
  fc.uuid().map((id) => `/v1/tasks/${id}`),
  fc.string({ maxLength: 300 }).map((s) => `/v1/tasks/${encodeURIComponent(s)}`),
  fc.string({ maxLength: 40 }).map((s) => `/v1/tasks/${encodeURIComponent(s)}/events`),
  fc.uuid().map((id) => `/v1/tasks/${id}/cancel`),
  fc
    .tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 80 }), fc.string({ maxLength: 20 }))
    .map(
      ([limit, cursor, status]) =>
        `/v1/tasks?limit=${encodeURIComponent(limit)}&cursor=${encodeURIComponent(cursor)}&status=${encodeURIComponent(status)}`,
    ),
  fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
  fc.constant('/v1/tasks?x=%zz&x[]=1'),
);
// Not content-length: a client that lies about its own framing desynchronises the connection, which
// no server can answer (it is bounded by requestTimeout instead).
const headers = fc.dictionary(
  fc.constantFrom('idempotency-key', 'last-event-id', 'authorization', 'x-forwarded-for', 'accept', 'content-encoding'),
  fc.string({ maxLength: 300 }),
  { maxKeys: 3 },
);
const request: fc.Arbitrary<FuzzRequest> = fc.record({
  method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS'),
  path,
  contentType,
  body,
  headers,
});

async function send(r: FuzzRequest): Promise<number | undefined> {
  const headers: Record<string, string> = { ...r.headers };
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  const hasBody = r.method !== 'GET' && r.body !== undefined;
  // Event streams that are valid stay open; this test only cares about the status line.
  const abort = new AbortController();
  try {
    const res = await fetch(`${h.url}${r.path}`, {
      method: r.method,
      headers,
      body: hasBody ? r.body : undefined,
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(5000)]),
    });
    const status = res.status;
    abort.abort();
    return status;
  } catch (err) {
    // The client refused to send it (an invalid header value or URL): nothing reached the server.
    if (err instanceof TypeError) return undefined;
    if ((err as Error).name === 'TimeoutError')
      throw new Error(`no answer within 5 s to ${JSON.stringify({ ...r, body: r.body?.slice(0, 100) })}`);
    throw err;
  }
}

describe('garbage in, 4xx out', () => {
  it('answers 1,000 generated and garbage requests without a 5xx, and stays up', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const status = await send(r);
        if (status === undefined) return;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        expect(status, `${r.method} ${r.path} ${r.contentType} ${r.body?.slice(0, 200)}`).toBeLessThan(500);
      }),
      { numRuns: 1000 },
    );
    // Most of it must have been rejected, not accepted.
    const rejected = [...statuses].filter(([s]) => s >= 400).reduce((n, [, c]) => n + c, 0);
    expect(rejected).toBeGreaterThan(500);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    const live = await fetch(`${h.url}/livez`);
    expect(live.status).toBe(200);
  });
});
