import { context, trace } from '@opentelemetry/api';
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installInMemoryTracing } from '../testing/index.js';
import { createLogger, type LoggerOptions } from './logger.js';
import { clearSecretValues, REDACTED, registerSecretValue } from './redact.js';

// Three canaries, each caught by a different layer: an exact registered value, a vendor key
// shape, and an HTTP credential.
const REGISTERED = 'canary-registered-7f3e9a1c5b';
const VENDOR_KEY = 'sk-ant-api03-CANARYzyxwvutsrqponmlkjihg0123';
const BEARER_TOKEN = 'canaryBearer.T0ken_value';
const BEARER = `Bearer ${BEARER_TOKEN}`;
const CANARIES = [REGISTERED, VENDOR_KEY, BEARER_TOKEN];

function capture(options: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  const log = createLogger({
    service: 'test',
    level: 'trace',
    destination: { write: (s: string) => lines.push(s) },
    ...options,
  });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function expectNoCanary(lines: string[]) {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) for (const canary of CANARIES) expect(line).not.toContain(canary);
}

describe('createLogger redaction', () => {
  beforeEach(() => registerSecretValue(REGISTERED));
  afterEach(() => clearSecretValues());

  it('scrubs the message string and interpolation arguments', () => {
    const { log, lines, parsed } = capture();
    log.info(`direct ${REGISTERED} ${VENDOR_KEY} ${BEARER}`);
    log.info('args %s %s %o %j', REGISTERED, VENDOR_KEY, { note: BEARER }, { toJSON: () => ({ v: REGISTERED }) });
    expectNoCanary(lines);
    expect(parsed()[0]?.msg).toBe(`direct ${REDACTED} ${REDACTED} Bearer ${REDACTED}`);
  });

  it('scrubs nested objects, secret-named fields at any depth, and toJSON output', () => {
    const { log, lines, parsed } = capture();
    log.info(
      {
        deep: { a: { b: { c: [{ note: `see ${REGISTERED}` }, { password: 'hunter2-password' }] } } },
        headers: { authorization: BEARER, 'x-api-key': VENDOR_KEY },
        apiKey: 'plain-looking-key-value',
        custom: { toJSON: () => ({ note: BEARER, nested: { clientSecret: 'not-shaped-but-named' } }) },
      },
      'objects',
    );
    expectNoCanary(lines);
    const line = lines[0] ?? '';
    expect(line).not.toContain('hunter2-password');
    expect(line).not.toContain('plain-looking-key-value');
    expect(line).not.toContain('not-shaped-but-named');
    const entry = parsed()[0] as { deep: { a: { b: { c: Array<Record<string, string>> } } } };
    expect(entry.deep.a.b.c[1]?.password).toBe(REDACTED);
  });

  it('scrubs child logger bindings', () => {
    const { log, lines, parsed } = capture();
    log
      .child({ note: REGISTERED, token: 'named-token-value', nested: { auth: BEARER } })
      .child({ k: VENDOR_KEY })
      .info('child');
    expectNoCanary(lines);
    expect(lines[0]).not.toContain('named-token-value');
    expect(parsed()[0]?.msg).toBe('child');
  });

  it('scrubs errors: message, stack, cause chain, AggregateError, enumerable fields, errors in any field', () => {
    const { log, lines, parsed } = capture();
    const withCause = new Error(`outer ${REGISTERED}`, {
      cause: new Error(`middle ${VENDOR_KEY}`, { cause: new Error(`inner ${BEARER}`) }),
    });
    const aggregate = new AggregateError([new Error(REGISTERED), new TypeError(VENDOR_KEY)], `many ${BEARER}`);
    const httpError = Object.assign(new Error('request failed'), { config: { headers: { authorization: BEARER } } });
    const stackOnly = new Error('stack only');
    stackOnly.stack = `Error: stack only\n    at handler (${VENDOR_KEY}.js:1:1)`;

    log.error(withCause);
    log.error({ err: aggregate }, 'aggregate');
    log.error(httpError);
    log.error(stackOnly);
    log.warn({ failure: new Error(`in another field ${REGISTERED}`) }, 'field');
    expectNoCanary(lines);

    const [first, second, , , fifth] = parsed() as Array<Record<string, Record<string, unknown>>>;
    expect(first?.err?.type).toBe('Error');
    expect((first?.err?.cause as Record<string, unknown>)?.message).toBe(`middle ${REDACTED}`);
    expect(second?.err?.aggregateErrors).toHaveLength(2);
    expect(fifth?.failure?.message).toBe(`in another field ${REDACTED}`);
  });

  it('scrubs a fastify request log carrying an authorization header', async () => {
    const { log, lines } = capture();
    const app = Fastify({ loggerInstance: log });
    app.get('/hello', async (request) => {
      request.log.info({ headers: request.headers, req: request }, 'handling');
      return { ok: true };
    });
    const res = await app.inject({
      method: 'GET',
      url: `/hello?key=${REGISTERED}`,
      headers: { authorization: BEARER, 'x-api-key': VENDOR_KEY, cookie: 'session=named-cookie-value' },
    });
    await app.close();
    expect(res.statusCode).toBe(200);
    expectNoCanary(lines);
    expect(lines.join('')).not.toContain('named-cookie-value');
    expect(lines.some((l) => l.includes('incoming request'))).toBe(true);
  });

  it('writes the active span ids on every line', () => {
    const exporter = installInMemoryTracing();
    const { log, parsed } = capture();
    const span = trace.getTracer('test').startSpan('work');
    context.with(trace.setSpan(context.active(), span), () => log.child({ role: 'r' }).info('inside'));
    span.end();
    log.info('outside');
    const [inside, outside] = parsed();
    expect(inside?.trace_id).toBe(span.spanContext().traceId);
    expect(inside?.span_id).toBe(span.spanContext().spanId);
    expect(outside?.trace_id).toBeUndefined();
    expect(exporter.getFinishedSpans()).toHaveLength(1);
  });
});

describe('createLogger output', () => {
  it('writes JSON lines with level labels, service and version', () => {
    const { log, parsed } = capture({ service: 'researcher', version: '1.2.3', level: 'info' });
    log.debug('hidden');
    log.info({ jobId: 'j1' }, 'shown');
    const lines = parsed();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'info',
      service: 'researcher',
      version: '1.2.3',
      jobId: 'j1',
      msg: 'shown',
    });
  });

  it('logs a toolResult field as its size, with a truncated sample only when sampled', () => {
    const big = { rows: Array.from({ length: 200 }, (_, i) => `row ${i}`) };
    const never = capture({ toolResultSampleRate: 0 });
    never.log.info({ tool: 't', toolResult: big }, 'tool done');
    expect(never.parsed()[0]?.toolResult).toEqual({ chars: JSON.stringify(big).length });

    const always = capture({ toolResultSampleRate: 1 });
    always.log.info({ tool: 't', toolResult: big }, 'tool done');
    const entry = always.parsed()[0]?.toolResult as { sample: string; truncated: boolean; chars: number };
    expect(entry.truncated).toBe(true);
    expect(entry.sample.length).toBeLessThan(entry.chars);
    expect(entry.sample.startsWith('{"rows":["row 0"')).toBe(true);
  });
});
