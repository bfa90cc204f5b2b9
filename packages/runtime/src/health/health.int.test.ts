// Needs a real, killable redis-server and real processes: readiness must follow Redis actually
// going away and coming back, and the Docker probe is a separate node process.
// Runs the built probe (build first: npx tsc -b packages/runtime/tsconfig.json).
import { fileURLToPath } from 'node:url';
import { freePort, type ServiceHandle, startProcess, startRedis, testServices, waitFor } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLifecycle } from '../lifecycle/index.js';
import { createLogger } from '../logger/index.js';
import { chromaCheck, redisCheck } from './checks.js';
import { createHealthServer, type HealthServer } from './server.js';

const probe = fileURLToPath(new URL('../../dist/health/probe.js', import.meta.url));
const log = createLogger({ service: 'health-int', level: 'silent' });

let redisServer: ServiceHandle;
let redis: Redis;
let server: HealthServer;
let port: number;

beforeEach(async () => {
  redisServer = await startRedis({ reuse: false });
  // Fail commands fast while disconnected; keep reconnecting (the default retry strategy).
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const lifecycle = createLifecycle({ log });
  lifecycle.markReady();
  server = createHealthServer({ port: 0, host: '127.0.0.1', checks: [redisCheck(redis)], lifecycle, log });
  port = await server.listen();
});

afterEach(async () => {
  await server.close();
  redis.disconnect();
  await redisServer.stop();
});

const readyz = async () => {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return {
    status: res.status,
    body: (await res.json()) as { status: string; reasons?: { check: string; error: string }[] },
  };
};

async function runProbe(env: Record<string, string>, args: string[] = []) {
  const proc = startProcess(process.execPath, [probe, ...args], { env });
  return { code: await proc.exited, out: proc.stdout() };
}

describe('readiness follows Redis', () => {
  it('goes 503 naming redis when redis-server dies, and back to 200 when it returns', async () => {
    await waitFor(async () => (await readyz()).status === 200, { what: 'ready with redis up' });

    await redisServer.kill?.();
    const down = await waitFor(
      async () => {
        const r = await readyz();
        return r.status === 503 ? r : undefined;
      },
      { what: '/readyz 503 after kill' },
    );
    expect(down.body.status).toBe('not_ready');
    expect(down.body.reasons?.map((r) => r.check)).toEqual(['redis']);
    expect(down.body.reasons?.[0]?.error).toMatch(/\S/);

    await redisServer.restart?.();
    const up = await waitFor(
      async () => {
        const r = await readyz();
        return r.status === 200 ? r : undefined;
      },
      { what: '/readyz 200 after restart', timeoutMs: 30_000 },
    );
    expect(up.body).toEqual({ status: 'ready', checks: { redis: 'ok' } });
  });
});

describe('the Docker HEALTHCHECK probe', () => {
  it('exits 0 while ready and 1 when not, checking /readyz unless told another path', async () => {
    await waitFor(async () => (await readyz()).status === 200, { what: 'ready' });
    const ok = await runProbe({ HEALTH_PORT: String(port) });
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^200 /);

    await redisServer.kill?.();
    await waitFor(async () => (await readyz()).status === 503, { what: 'not ready' });
    expect((await runProbe({ HEALTH_PORT: String(port) })).code).toBe(1);
    // Liveness does not depend on Redis.
    expect((await runProbe({ HEALTH_PORT: String(port) }, ['/livez'])).code).toBe(0);
  });

  it('exits 1 when nothing listens', async () => {
    const result = await runProbe({ HEALTH_PORT: String(await freePort()) });
    expect(result.code).toBe(1);
    expect(result.out).toContain('/readyz');
  });
});

describe('chromaCheck', () => {
  it('passes against a live Chroma and fails against a closed port', async () => {
    const signal = new AbortController().signal;
    await expect(chromaCheck(testServices().chromaUrl).check(signal)).resolves.toBeUndefined();
    await expect(chromaCheck(`http://127.0.0.1:${await freePort()}`).check(signal)).rejects.toThrow();
  });
});
