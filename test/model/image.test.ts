// The model server's image, built and run as the local-model profile runs it: non-root, read-only,
// no capabilities, no network, the model and the key mounted read-only. Its healthcheck must pass (the
// services wait on it) and its API must refuse a caller without the key. Proven with Docker itself
// because only the engine shows whether the image's user, paths and libraries work under those flags.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@flotilla/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const MODEL_FILE = process.env.MODEL_FILE ?? '';
const suffix = randomBytes(4).toString('hex');
const image = `flotilla/model-server:smoke-${suffix}`;
const container = `flotilla-model-smoke-${suffix}`;

const docker = (args: string[], timeoutMs = 60_000) => {
  const r = spawnSync('docker', args, { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
};
const engineUp = docker(['info'], 20_000).code === 0;

/** An HTTP status from inside the container (it has no network): python's urllib, as the healthcheck uses. */
const statusInside = (path: string, key?: string) =>
  docker([
    'exec',
    container,
    '/opt/model-server/bin/python',
    '-c',
    [
      'import json, sys, urllib.request as u, urllib.error as e',
      `h = {"content-type": "application/json"${key ? `, "authorization": "Bearer ${key}"` : ''}}`,
      'b = json.dumps({"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4}).encode()',
      'try:',
      `    print(u.urlopen(u.Request("http://127.0.0.1:8080${path}", data=b, headers=h), timeout=120).status)`,
      'except e.HTTPError as err:',
      '    print(err.code)',
    ].join('\n'),
  ]).out;

// scripts/test-model starts the engine (scripts/docker/ensure-engine); without one, only this file skips.
describe.skipIf(!engineUp)('the model server image (compose/model-server/Dockerfile)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-model-image-'));
  const key = randomBytes(24).toString('hex');

  beforeAll(() => {
    const built = docker(['build', '-q', '-t', image, join(repoRoot, 'compose', 'model-server')], 900_000);
    expect(built.code, `[flotilla fault] the image did not build:\n${built.out}`).toBe(0);
    writeFileSync(join(dir, 'key'), key, { mode: 0o644 });
    // The service's flags in compose.yaml (the x-flotilla-service anchor and its own limits).
    const run = docker([
      'run',
      '-d',
      '--name',
      container,
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges:true',
      '--init',
      '--memory',
      '2g',
      '--pids-limit',
      '64',
      '--network',
      'none',
      '-e',
      'MODEL_THREADS=1',
      '-e',
      'MODEL_API_KEY_FILE=/run/secrets/llm_api_key',
      '-v',
      `${join(dir, 'key')}:/run/secrets/llm_api_key:ro`,
      '-v',
      `${MODEL_FILE}:/models/local.gguf:ro`,
      image,
    ]);
    expect(run.code, run.out).toBe(0);
  }, 900_000);

  afterAll(() => {
    docker(['rm', '-f', container]);
    docker(['rmi', image]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs as uid 65532 and passes its healthcheck once the model is loaded', async () => {
    await waitFor(
      () => {
        const s = docker(['inspect', '-f', '{{.State.Health.Status}}', container]).out;
        if (s === 'unhealthy') throw new Error(`unhealthy: ${docker(['logs', '--tail', '20', container]).out}`);
        return s === 'healthy';
      },
      { what: 'the model server container healthy', timeoutMs: 180_000, intervalMs: 1000 },
    );
    expect(docker(['exec', container, 'id', '-u']).out).toBe('65532');
  });

  it('answers a caller with the key, and refuses one without it', () => {
    expect(statusInside('/v1/chat/completions', key)).toBe('200');
    expect(statusInside('/v1/chat/completions')).toBe('401');
    expect(statusInside('/v1/chat/completions', 'not-the-key')).toBe('401');
  });
});
