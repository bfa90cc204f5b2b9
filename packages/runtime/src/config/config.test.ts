import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { clearSecretValues, REDACTED, redactText } from '../logger/index.js';
import { baseConfigSchema, emptyCredentialFileProblems, redisAuthProblems, redisClusterProblems } from './base.js';
import { ConfigError } from './errors.js';
import { envField } from './fields.js';
import { checkConfig, EX_CONFIG, loadConfig, loadConfigOrExit } from './load.js';
import { secret, secretKind } from './secret.js';

const schema = baseConfigSchema.extend({ API_TOKEN: secret(z.string().min(16)).optional() });

function problemsOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    clearSecretValues();
  });

  it('applies the documented defaults', () => {
    const config = loadConfig(baseConfigSchema, { env: {} });
    expect(config).toMatchObject({
      LOG_LEVEL: 'info',
      LOG_TOOL_RESULT_SAMPLE_RATE: 0.01,
      REDIS_URL: 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: 'flotilla',
      HEALTH_PORT: 8080,
      HEALTH_HOST: '0.0.0.0',
      SHUTDOWN_GRACE_MS: 25_000,
      AGENT_MAX_STEPS: 25,
      AGENT_MAX_TOOL_CALLS: 12,
      AGENT_MAX_SECONDS: 60,
      AGENT_MAX_TOKENS: 100_000,
      TOOLS_ALLOWLIST: ['*'],
    });
    expect(config.SERVICE_VERSION).toEqual(expect.any(String));
    expect(config.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('coerces env strings, treats empty values as unset, and splits lists', () => {
    const config = loadConfig(baseConfigSchema, {
      env: {
        AGENT_MAX_STEPS: ' 7 ',
        AGENT_MAX_SECONDS: '1.5',
        HEALTH_PORT: '0',
        TOOLS_ALLOWLIST: 'web.*, notes_write,,',
        LOG_LEVEL: '',
      },
    });
    expect(config.AGENT_MAX_STEPS).toBe(7);
    expect(config.AGENT_MAX_SECONDS).toBe(1.5);
    expect(config.HEALTH_PORT).toBe(0);
    expect(config.TOOLS_ALLOWLIST).toEqual(['web.*', 'notes_write']);
    expect(config.LOG_LEVEL).toBe('info');
  });

  it('reports every problem, one readable line each, quoting non-secret values', () => {
    const err = (() => {
      try {
        loadConfig(schema, {
          env: { AGENT_MAX_STEPS: 'abc', LOG_LEVEL: 'loud', REDIS_URL: 'http://x', KILL_SWITCH: 'a b' },
        });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.code).toBe('FLOTILLA_CONFIG');
    expect(err?.message.split('\n')).toEqual([
      'LOG_LEVEL: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
      'REDIS_URL: expected a redis:// or rediss:// URL (secret, value hidden)',
      'AGENT_MAX_STEPS: expected a positive integer, got "abc"',
      'KILL_SWITCH: expected "all", "writes" or a comma list of tool names, got "a b"',
    ]);
  });

  it('names a missing required variable', () => {
    const required = z.object({ API_TOKEN: secret(z.string()) });
    expect(problemsOf(() => loadConfig(required, { env: {} }))).toEqual([
      { variable: 'API_TOKEN', message: 'required, but not set (set API_TOKEN or API_TOKEN_FILE)' },
    ]);
  });

  it('reads K_FILE, trimming one trailing newline, and registers the secret with the redactor', () => {
    const file = join(dir, 'api_token');
    writeFileSync(file, 'file-token-0123456789abcdef\n');
    const config = loadConfig(schema, { env: { API_TOKEN_FILE: file } });
    expect(config.API_TOKEN).toBe('file-token-0123456789abcdef');
    expect(redactText('token=file-token-0123456789abcdef')).toBe(`token=${REDACTED}`);
  });

  it('registers only the password of a secret URL', () => {
    loadConfig(baseConfigSchema, { env: { REDIS_URL: 'redis://:p%40ss-word-1@redis:6379' } });
    expect(redactText('auth failed for p@ss-word-1 at redis:6379')).toBe(`auth failed for ${REDACTED} at redis:6379`);
  });

  it('hides a secret value that fails validation', () => {
    const problems = problemsOf(() => loadConfig(schema, { env: { API_TOKEN: 'too-short-tok' } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toMatch(/\(secret, value hidden\)$/);
    expect(JSON.stringify(problems)).not.toContain('too-short-tok');
  });

  it('names the file variable when the file cannot be read, and refuses K together with K_FILE', () => {
    const missing = join(dir, 'nope');
    expect(problemsOf(() => loadConfig(schema, { env: { API_TOKEN_FILE: missing } }))).toEqual([
      { variable: 'API_TOKEN_FILE', message: `cannot read ${missing} (ENOENT)` },
    ]);
    expect(
      problemsOf(() => loadConfig(schema, { env: { API_TOKEN: 'x'.repeat(16), API_TOKEN_FILE: missing } })),
    ).toEqual([{ variable: 'API_TOKEN', message: 'set either API_TOKEN or API_TOKEN_FILE, not both' }]);
  });

  it('asks for a Redis password with a Redis user, reads it from a file and never echoes it', () => {
    const check = (c: z.output<typeof baseConfigSchema>) => redisAuthProblems(c);
    const empty = join(dir, 'redis_password');
    writeFileSync(empty, '\n');
    expect(
      problemsOf(() => loadConfig(baseConfigSchema, { env: { REDIS_USERNAME: 'worker-researcher' }, check })),
    ).toEqual([{ variable: 'REDIS_PASSWORD', message: expect.stringMatching(/^required when REDIS_USERNAME is set/) }]);
    expect(
      problemsOf(() =>
        loadConfig(baseConfigSchema, {
          env: { REDIS_USERNAME: 'worker-researcher', REDIS_PASSWORD_FILE: empty },
          check,
        }),
      ).map((p) => p.variable),
    ).toEqual(['REDIS_PASSWORD']);
    // A named but empty credential file is a mistake, not "no credential".
    const chromaEnv = { CHROMA_TOKEN_FILE: empty };
    const loaded = loadConfig(baseConfigSchema, { env: chromaEnv });
    expect(emptyCredentialFileProblems(loaded, chromaEnv)).toEqual([
      { variable: 'CHROMA_TOKEN_FILE', message: `${empty} is empty` },
    ]);
    const both = problemsOf(() =>
      loadConfig(baseConfigSchema, {
        env: { REDIS_URL: 'redis://u:url-pass-0123456789@redis:6379', REDIS_USERNAME: 'u', REDIS_PASSWORD: 'x' },
        check,
      }),
    );
    expect(both.map((p) => p.variable)).toEqual(['REDIS_URL']);
    expect(JSON.stringify(both)).not.toContain('url-pass-0123456789');

    const file = join(dir, 'redis_password_ok');
    writeFileSync(file, 'redis-pass-0123456789abcdef\n');
    const config = loadConfig(baseConfigSchema, {
      env: { REDIS_USERNAME: 'worker-researcher', REDIS_PASSWORD_FILE: file },
      check,
    });
    expect(config).toMatchObject({
      REDIS_USERNAME: 'worker-researcher',
      REDIS_PASSWORD: 'redis-pass-0123456789abcdef',
    });
    expect(redactText('AUTH worker-researcher redis-pass-0123456789abcdef')).toBe(`AUTH worker-researcher ${REDACTED}`);
    expect(secretKind(baseConfigSchema.shape.REDIS_PASSWORD)).toBe('value');
    expect(secretKind(baseConfigSchema.shape.CHROMA_TOKEN)).toBe('value');
  });

  it('reads REDIS_CLUSTER_NODES as host:port seeds and asks for a hash-tagged prefix and no REDIS_URL beside it', () => {
    const load = (env: NodeJS.ProcessEnv) =>
      loadConfig(baseConfigSchema, { env, check: (c) => redisClusterProblems(c, env) });
    expect(load({}).REDIS_CLUSTER_NODES).toBeUndefined();
    expect(
      load({ REDIS_CLUSTER_NODES: ' redis-0:6379, 10.0.0.7:7001,[::1]:7002 ,', QUEUE_PREFIX: '{flotilla}' })
        .REDIS_CLUSTER_NODES,
    ).toEqual([
      { host: 'redis-0', port: 6379 },
      { host: '10.0.0.7', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    for (const bad of ['redis-0', 'redis-0:99999', 'redis://redis-0:6379', ' , '])
      expect(
        problemsOf(() => load({ REDIS_CLUSTER_NODES: bad, QUEUE_PREFIX: '{f}' })).map((p) => p.variable),
        bad,
      ).toEqual(['REDIS_CLUSTER_NODES']);
    // Untagged, and an empty tag, would put a queue's keys in several slots: CROSSSLOT at the first task.
    for (const prefix of ['flotilla', 'flo{}tilla'])
      expect(problemsOf(() => load({ REDIS_CLUSTER_NODES: 'r:6379', QUEUE_PREFIX: prefix }))).toEqual([
        {
          variable: 'QUEUE_PREFIX',
          message: expect.stringMatching(/has no hash tag, which REDIS_CLUSTER_NODES needs/),
        },
      ]);
    expect(
      problemsOf(() => load({ REDIS_CLUSTER_NODES: 'r:6379', QUEUE_PREFIX: '{f}', REDIS_URL: 'redis://r:6379' })).map(
        (p) => p.variable,
      ),
    ).toEqual(['REDIS_URL']);
    // Control: the same prefix without cluster nodes is fine (one node has no slots to respect).
    expect(load({ QUEUE_PREFIX: 'flotilla' }).QUEUE_PREFIX).toBe('flotilla');
  });

  it('finds the secret mark through optional, default and pipe wrappers', () => {
    expect(secretKind(schema.shape.API_TOKEN)).toBe('value');
    expect(secretKind(baseConfigSchema.shape.REDIS_URL)).toBe('url-credentials');
    expect(secretKind(baseConfigSchema.shape.QUEUE_PREFIX)).toBeUndefined();
    expect(secretKind(secret(envField.positiveInt()).default(3))).toBe('value');
  });

  it('gives zod built-ins readable messages too', () => {
    const own = z.object({ N: z.coerce.number().int().positive(), U: z.url().optional() });
    expect(
      problemsOf(() => loadConfig(own, { env: { N: 'abc', U: 'not a url' } })).map(
        (p) => `${p.variable}: ${p.message}`,
      ),
    ).toEqual(['N: expected a number, got "abc"', 'U: expected a URL, got "not a url"']);
  });
});

describe('loadConfigOrExit', () => {
  it('writes "config error:" lines to stderr and exits 78', () => {
    let written = '';
    let code: number | undefined;
    const exit = ((c: number) => {
      code = c;
      throw new Error('exited');
    }) as (code: number) => never;
    expect(() =>
      loadConfigOrExit(schema, {
        env: { AGENT_MAX_TOKENS: '-1' },
        exit,
        stderr: { write: (s: string) => (written += s) },
      }),
    ).toThrow('exited');
    expect(code).toBe(EX_CONFIG);
    expect(written).toBe('config error: AGENT_MAX_TOKENS: expected a positive integer, got "-1"\n');
  });
});

describe('checkConfig', () => {
  it('gives the config, or the lines loadConfigOrExit would write before exiting 78', () => {
    expect(checkConfig(schema, { env: { HEALTH_PORT: '9000' } })).toMatchObject({
      ok: true,
      config: { HEALTH_PORT: 9000 },
    });
    const bad = checkConfig(schema, { env: { HEALTH_PORT: '-1', API_TOKEN: 'short-secret' } });
    expect(bad.ok).toBe(false);
    const lines = bad.ok ? [] : bad.lines;
    expect(lines.map((l) => l.split(':')[1]?.trim())).toEqual(['HEALTH_PORT', 'API_TOKEN']);
    expect(lines.every((l) => l.startsWith('config error: ') && l.endsWith('\n'))).toBe(true);
    expect(lines.join('')).not.toContain('short-secret');
  });
});
