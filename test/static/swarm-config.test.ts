// compose/compose.stack.yaml is compose.yaml translated for `docker stack deploy` (scripts/swarm-config.mjs).
// These checks keep the committed copy in step with compose.yaml and make sure the translation keeps
// what the stack relies on: limits, hardening, healthchecks, secrets, internal networks, the update
// and rollback policy. test/swarm deploys it on a real swarm.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { composePath, stackPath, swarmConfig, swarmConfigText } from '../../scripts/swarm-config.mjs';

type Service = Record<string, unknown> & {
  deploy?: Record<string, Record<string, unknown>> & { resources?: { limits?: Record<string, unknown> } };
  networks?: string[];
  volumes?: Array<Record<string, unknown> | string>;
};
type Stack = { services: Record<string, Service>; networks: Record<string, Record<string, unknown>> };

const composeText = readFileSync(composePath, 'utf8');
const compose = parse(composeText, { merge: true }) as Stack & { services: Record<string, Service> };
const generated = swarmConfig(composeText) as Stack;
const swarmOverride = parse(readFileSync(new URL('../../compose/compose.swarm.yaml', import.meta.url), 'utf8'), {
  merge: true,
}) as Stack;

// Keys the stack loader of `docker stack deploy` refuses (checked on Docker 28's CLI, docs/swarm.md).
const REFUSED = ['mem_limit', 'cpus', 'pids_limit', 'profiles', 'runtime', 'depends_on'];

describe('compose/compose.stack.yaml', () => {
  it('is what scripts/swarm-config.mjs makes of compose.yaml now (run it after editing compose.yaml)', () => {
    expect(readFileSync(stackPath, 'utf8')).toBe(swarmConfigText(composeText));
  });

  it('goes stale when compose.yaml changes (control)', () => {
    const edited = composeText.replace(/mem_limit: 512m/, 'mem_limit: 640m');
    expect(edited).not.toBe(composeText);
    expect(swarmConfigText(edited)).not.toBe(readFileSync(stackPath, 'utf8'));
  });

  it('has every service Compose starts by default, and no profile service', () => {
    const byDefault = Object.keys(compose.services).filter((n) => !compose.services[n]?.profiles);
    expect(Object.keys(generated.services).sort()).toEqual(byDefault.sort());
    expect(Object.keys(swarmConfig(composeText, { profiles: ['dashboard'] }).services)).toContain('dashboard');
  });

  it("carries each service's limits into deploy.resources.limits, and no key the stack loader refuses", () => {
    for (const [name, s] of Object.entries(generated.services)) {
      const src = compose.services[name] as Service;
      const limits = s.deploy?.resources?.limits ?? {};
      if (src.mem_limit !== undefined) expect(limits.memory, name).toBe(src.mem_limit);
      if (src.cpus !== undefined) expect(Number(limits.cpus), name).toBe(Number(src.cpus));
      if (src.pids_limit !== undefined) expect(limits.pids, name).toBe(src.pids_limit);
      for (const key of REFUSED) expect(Object.keys(s), name).not.toContain(key);
    }
  });

  it('keeps the hardening, healthchecks, secrets and update/rollback policy of every service', () => {
    for (const [name, s] of Object.entries(generated.services)) {
      const src = compose.services[name] as Service;
      for (const key of [
        'user',
        'read_only',
        'cap_drop',
        'cap_add',
        'security_opt',
        'init',
        'healthcheck',
        'secrets',
      ]) {
        expect(s[key], `${name}.${key}`).toEqual(src[key]);
      }
      expect(s.deploy?.update_config, name).toEqual(src.deploy?.update_config);
      expect(s.deploy?.rollback_config, name).toEqual(src.deploy?.rollback_config);
      // Swarm ignores the service-level tmpfs list: each becomes a tmpfs mount.
      for (const entry of (src.tmpfs as string[] | undefined) ?? []) {
        expect(s.volumes, name).toContainEqual(expect.objectContaining({ type: 'tmpfs', target: entry.split(':')[0] }));
      }
    }
  });

  it('puts every service on overlay networks, internal exactly where Compose has internal', () => {
    for (const [name, net] of Object.entries(generated.networks)) {
      expect(net.driver, name).toBe('overlay');
      const src = (compose.networks as Record<string, Record<string, unknown> | null>)[name];
      expect(net.internal === true, name).toBe(name === 'isolated' || src?.internal === true);
    }
    for (const [name, s] of Object.entries(generated.services)) {
      if (compose.services[name]?.network_mode === undefined)
        expect(s.networks, name).toEqual(compose.services[name]?.networks);
    }
    // network_mode: none has no Swarm form: the one-shot chown gets an internal network of its own.
    expect(generated.services['chroma-data-owner']?.networks).toEqual(['isolated']);
  });

  it('publishes the API port as a number, in host mode (Swarm binds no host address)', () => {
    expect(generated.services.orchestrator?.ports).toEqual([
      { target: 8080, published: 8080, protocol: 'tcp', mode: 'host' },
    ]);
    const moved = swarmConfig(composeText, { env: { ORCHESTRATOR_PORT: '18080' } }) as Stack;
    expect(moved.services.orchestrator?.ports).toEqual([expect.objectContaining({ published: 18080 })]);
  });
});

describe('compose/compose.swarm.yaml', () => {
  it('names only services of the stack file, and sets no limits (they come from compose.yaml)', () => {
    for (const [name, s] of Object.entries(swarmOverride.services)) {
      expect(Object.keys(generated.services), name).toContain(name);
      expect(s.deploy?.resources?.limits, name).toBeUndefined();
    }
  });

  it('rolls every flotilla service start-first with automatic rollback', () => {
    for (const name of ['orchestrator', 'researcher', 'coder', 'sandbox', 'egress-proxy']) {
      const deploy = swarmOverride.services[name]?.deploy ?? {};
      expect(deploy.update_config, name).toMatchObject({ order: 'start-first', failure_action: 'rollback' });
      expect(deploy.rollback_config, name).toMatchObject({ order: 'start-first' });
      // The sandbox is off in Swarm until its node takes the seccomp profile (docs/swarm.md).
      if (name === 'sandbox') expect(deploy.replicas, name).toBe(0);
      else expect(deploy.replicas, name).toBeGreaterThan(0);
    }
  });
});
