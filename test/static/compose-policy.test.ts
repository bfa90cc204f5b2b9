import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type Compose,
  composePath,
  composeViolations,
  durationMs,
  flotillaServices,
  loadCompose,
  type Service,
  servicesNotUsingAnchor,
} from './compose-policy.js';

const clone = (c: Compose): Compose => structuredClone(c);

describe('compose/compose.yaml hardening policy', () => {
  const compose = loadCompose();

  it('finds the flotilla services', () => {
    expect(flotillaServices(compose)).toEqual(
      expect.arrayContaining([
        'orchestrator',
        'researcher',
        'coder',
        'sandbox',
        'egress-proxy',
        'model-server',
        'mcp-everything',
      ]),
    );
  });

  it('has no violations', () => {
    expect(composeViolations(compose)).toEqual([]);
  });

  it('merges the one x-flotilla-service anchor into every flotilla service', () => {
    expect(servicesNotUsingAnchor(readFileSync(composePath, 'utf8'))).toEqual([]);
  });

  // Each rule must be able to fail: drop one key from one service and expect exactly that complaint.
  const removals: Array<[string, string, RegExp]> = [
    ['researcher', 'read_only', /researcher: read_only/],
    ['coder', 'cap_drop', /coder: cap_drop/],
    ['orchestrator', 'security_opt', /orchestrator: security_opt no-new-privileges/],
    ['researcher', 'init', /researcher: init/],
    ['researcher', 'mem_limit', /researcher: mem_limit/],
    ['coder', 'cpus', /coder: cpus/],
    ['orchestrator', 'pids_limit', /orchestrator: pids_limit/],
    ['researcher', 'healthcheck', /researcher: healthcheck.test/],
    ['coder', 'restart', /coder: restart policy/],
    ['researcher', 'stop_grace_period', /researcher: stop_grace_period/],
    ['orchestrator', 'logging', /orchestrator: logging/],
    ['researcher', 'tmpfs', /researcher: tmpfs/],
    ['coder', 'user', /coder: user/],
    ['researcher', 'depends_on', /researcher: depends_on redis/],
  ];
  it.each(removals)('fails when %s loses %s', (service, key, message) => {
    const broken = clone(compose);
    delete (broken.services[service] as Record<string, unknown>)[key];
    expect(composeViolations(broken)).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
  });

  it('fails on a root user, a short grace period, ports on the scalable researcher and a leaked secret', () => {
    const broken = clone(compose);
    const s = broken.services;
    (s.orchestrator as Record<string, unknown>).user = '0:0';
    (s.coder as Record<string, unknown>).stop_grace_period = '10s';
    (s.researcher as Record<string, unknown>).ports = ['8081:8080'];
    (s.researcher as Record<string, unknown>).environment = { LLM_API_KEY: 'sk-live' };
    const violations = composeViolations(broken);
    expect(violations).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/orchestrator: user must be a numeric non-root uid/),
        expect.stringMatching(/coder: stop_grace_period/),
        expect.stringMatching(/researcher: host ports prevent --scale/),
        expect.stringMatching(/researcher: LLM_API_KEY must come from a \*_FILE secret/),
      ]),
    );
  });

  it('fails when a backing service gets egress or a network stops being internal', () => {
    const broken = clone(compose);
    (broken.services.redis as Record<string, unknown>).networks = ['backend', 'egress'];
    (broken.networks as Record<string, { internal?: boolean }>).sandbox = {};
    (broken.services.researcher as Record<string, unknown>).networks = ['backend', 'egress', 'sandbox'];
    expect(composeViolations(broken)).toEqual(
      expect.arrayContaining([
        'redis: joins non-internal network egress',
        'networks.sandbox: must be internal',
        'researcher: only the coder shares the sandbox network',
      ]),
    );
  });

  it('fails when Chroma is reachable beyond its gate, runs as root, or Redis loses its users', () => {
    const broken = clone(compose);
    const s = broken.services;
    (s.chroma as Record<string, unknown>).networks = ['memory', 'backend'];
    delete (s.chroma as Record<string, unknown>).user;
    (s['chroma-gate'] as Record<string, unknown>).read_only = false;
    (s.researcher as Record<string, unknown>).networks = ['backend', 'outbound', 'memory'];
    (broken.networks as Record<string, { internal?: boolean }>).memory = {};
    const redis = s.redis as Record<string, unknown>;
    redis.entrypoint = ['redis-server'];
    redis.command = ['redis-server', '--protected-mode', 'no'];
    const coderEnv = (s.coder as { environment: Record<string, unknown> }).environment;
    delete coderEnv.REDIS_USERNAME;
    delete coderEnv.CHROMA_TOKEN_FILE;
    expect(composeViolations(broken)).toEqual(
      expect.arrayContaining([
        'chroma: must join only the memory network',
        'chroma: user must be a numeric non-root uid, got ""',
        'chroma-gate: read_only: true is missing',
        'researcher: only chroma and its gate share the memory network',
        'networks.memory: must be internal',
        'redis: must not turn protected-mode off',
        'redis: must start through users-acl.sh (its ACL file)',
        'coder: must log in to Redis as its own user (REDIS_USERNAME, REDIS_PASSWORD_FILE)',
        'coder: CHROMA_URL without CHROMA_TOKEN_FILE',
      ]),
    );
  });

  it('fails when an agent service joins egress, skips the proxy, or outbound gets a route out', () => {
    const broken = clone(compose);
    const s = broken.services;
    (s.coder as Record<string, unknown>).networks = ['backend', 'egress', 'sandbox'];
    (s.researcher as Record<string, unknown>).environment = {
      ...((s.researcher as Record<string, unknown>).environment as object),
      HTTPS_PROXY: undefined,
    };
    (s.orchestrator as Record<string, unknown>).networks = ['backend', 'api'];
    (broken.networks as Record<string, { internal?: boolean }>).outbound = {};
    (s['egress-proxy'] as Record<string, unknown>).networks = ['outbound', 'egress', 'backend'];
    expect(composeViolations(broken)).toEqual(
      expect.arrayContaining([
        'coder: joins egress: only egress-proxy may',
        'coder: must join the outbound network (its way to the proxy)',
        'researcher: HTTPS_PROXY must be http://egress-proxy:3128',
        'orchestrator: must join the outbound network (its way to the proxy)',
        'networks.outbound: must be internal',
        'egress-proxy: must join exactly outbound and egress',
      ]),
    );
  });

  it('fails when the model server joins another network, or another service or a route out reaches it', () => {
    const broken = clone(compose);
    (broken.services['model-server'] as Service).networks = ['models', 'backend'];
    (broken.services['chroma-gate'] as Service).networks = ['backend', 'memory', 'models'];
    (broken.networks as Record<string, { internal?: boolean }>).models = {};
    expect(composeViolations(broken)).toEqual(
      expect.arrayContaining([
        'model-server: must join only the models network',
        'chroma-gate: only the agent services share the models network with the model server',
        'networks.models: must be internal',
      ]),
    );
  });

  it('fails when the sandbox joins another network, loses its seccomp profile or its runtime', () => {
    const broken = clone(compose);
    const sandbox = broken.services.sandbox as Record<string, unknown>;
    sandbox.networks = ['sandbox', 'backend'];
    sandbox.security_opt = ['no-new-privileges:true', 'seccomp:unconfined'];
    delete sandbox.runtime;
    expect(composeViolations(broken)).toEqual(
      expect.arrayContaining([
        'sandbox: must join only the sandbox network',
        'sandbox: security_opt seccomp must name a profile file',
        expect.stringMatching(/^sandbox: runtime must be set/),
      ]),
    );
  });

  it('fails on the keys docker-compose 1.29 rejects', () => {
    const broken = clone(compose);
    broken.name = 'flotilla';
    (broken.services.coder as Record<string, unknown>).deploy = {
      resources: { limits: { pids: 10 } },
      update_config: { order: 'start-first', failure_action: 'rollback' },
    };
    expect(composeViolations(broken)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^top-level name/),
        expect.stringMatching(/coder: deploy.resources.limits.pids/),
      ]),
    );
  });

  it('fails when an MCP server reaches beyond its own network, or a non-agent service joins it', () => {
    const broken = clone(compose);
    (broken.services['mcp-everything'] as Record<string, unknown>).networks = ['mcp-everything', 'backend'];
    (broken.services.redis as Record<string, unknown>).networks = ['backend', 'mcp-everything'];
    (broken.networks as Record<string, { internal?: boolean }>)['mcp-everything'] = {};
    expect(composeViolations(broken)).toEqual(
      expect.arrayContaining([
        'mcp-everything: must join only its own mcp-everything network',
        'redis: only agent services share the mcp-everything network',
        'networks.mcp-everything: must be internal',
      ]),
    );
    // An agent service may: the override for the mcp profile adds the researcher.
    const ok = clone(compose);
    (ok.services.researcher as Record<string, unknown>).networks = ['backend', 'outbound', 'models', 'mcp-everything'];
    expect(composeViolations(ok)).toEqual([]);
  });

  it('flags a flotilla service that stops merging the anchor', () => {
    const source = readFileSync(composePath, 'utf8').replace(
      /(\n {2}coder:\n) {4}<<: \*flotilla-service\n/,
      '$1    read_only: true\n',
    );
    expect(source).not.toEqual(readFileSync(composePath, 'utf8'));
    expect(servicesNotUsingAnchor(source)).toEqual(['coder']);
  });
});

describe('durationMs', () => {
  it('parses compose durations', () => {
    expect(durationMs('35s')).toBe(35_000);
    expect(durationMs('1m30s')).toBe(90_000);
    expect(durationMs('500ms')).toBe(500);
    expect(durationMs('soon')).toBeNaN();
    expect(durationMs(undefined)).toBeNaN();
  });
});
