// deploy/k8s is generated from compose/compose.yaml (deploy/k8s/generate.mjs). These tests fail when the
// two drift apart (a committed manifest that the generator would not write), prove that a drift in
// compose.yaml does change the manifests, and check the rules the manifests must keep whatever the
// generator does: Pod Security "restricted", probes and drain, and who may reach whom.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterHashTag, queueNames } from '@flotilla/contracts';
import { baseConfigSchema, loadConfig, redisClusterProblems } from '@flotilla/runtime';
import { QueueKeys } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
// @ts-expect-error -- a plain ESM script without type declarations
import { generate, PRESTOP_SLEEP_S } from '../../deploy/k8s/generate.mjs';
import { composePath, repoRoot, SHUTDOWN_GRACE_MS } from './compose-policy.js';

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML of a dozen kinds; the assertions check its shape
type Spec = any;
type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Spec;
};
type Files = Record<string, string>;

const composeText = readFileSync(composePath, 'utf8');
const generated: Files = generate(composeText);
/** The Redis Cluster variant's files: patches and replacements of the objects below, checked on their own. */
const CLUSTER_DIR = 'deploy/k8s/components/redis-cluster/';
const parsed = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Obj);
const docsOf = (files: Files): Obj[] =>
  Object.entries(files)
    .filter(([p]) => !p.endsWith('kustomization.yaml') && !p.startsWith(CLUSTER_DIR))
    .flatMap(([, text]) => parsed(text));
const objects = docsOf(generated);
const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
const byName = (name: string) => workloads.find((w) => w.metadata.name === name);
const podLabels = (w: Obj): Record<string, string> => w.spec.template.metadata.labels;

describe('deploy/k8s is in step with compose.yaml', () => {
  it('every generated file is committed exactly as the generator writes it', () => {
    const stale = Object.entries(generated).filter(([path, text]) => {
      let onDisk = '';
      try {
        onDisk = readFileSync(join(repoRoot, path), 'utf8');
      } catch {}
      return onDisk !== text;
    });
    // Fix: node deploy/k8s/generate.mjs
    expect(stale.map(([p]) => p)).toEqual([]);
  });

  it.each([
    ['a limit', (s: string) => s.replace(/(coder:[\s\S]*?)(networks:)/, '$1mem_limit: 1g\n    $2')],
    ['a variable', (s: string) => s.replace('SERVICE_NAME: researcher', 'SERVICE_NAME: researcher\n      EXTRA: "1"')],
    [
      'a network',
      (s: string) =>
        s.replace('networks: [backend, outbound, sandbox, models]', 'networks: [backend, outbound, models]'),
    ],
    ['a probe', (s: string) => s.replace('start_period: 30s', 'start_period: 90s')],
    ['a hardening key', (s: string) => s.replace('  read_only: true\n  tmpfs:', '  read_only: false\n  tmpfs:')],
    [
      'a service',
      (s: string) =>
        s.replace(
          '  # flotilla:new-workers',
          '  extra:\n    <<: *flotilla-service\n    image: x\n  # flotilla:new-workers',
        ),
    ],
  ])('a drift in %s changes the manifests (so the check above would fail)', (_what, drift) => {
    const drifted = drift(composeText);
    expect(drifted).not.toBe(composeText);
    const changed = Object.entries(generate(drifted) as Files).filter(([p, text]) => generated[p] !== text);
    expect(changed.length).toBeGreaterThan(0);
  });

  it('a Compose key the generator has no mapping for stops it, naming the key', () => {
    const drifted = composeText.replace('  init: true\n', '  init: true\n  privileged: false\n');
    expect(() => generate(drifted)).toThrow(/compose key "privileged"/);
    const opt = composeText.replace(
      '      - apparmor=unconfined\n',
      '      - apparmor=unconfined\n      - label=disable\n',
    );
    expect(() => generate(opt)).toThrow(/security_opt "label=disable"/);
  });

  it('has a workload for every Compose service that is not behind a profile', () => {
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual(
      [
        'chroma',
        'chroma-gate',
        'coder',
        'egress-proxy',
        'orchestrator',
        'otel-collector',
        'redis',
        'researcher',
        'sandbox',
      ].sort(),
    );
  });
});

describe('every pod is "restricted" and drains like its Compose service', () => {
  it.each(workloads.map((w) => [w.metadata.name, w] as const))('%s', (_name, w) => {
    const pod = w.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0];
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      runAsNonRoot: true,
    });
    expect(c.resources.requests).toHaveProperty('memory');
    expect(c.resources.requests).toHaveProperty('cpu');
    expect(c.resources.limits).toHaveProperty('memory');
    expect(c.resources.limits).toHaveProperty('cpu');
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(c[probe]).toBeDefined();
    // Secrets only as files: never in an environment value or reference.
    expect(JSON.stringify(c.env ?? [])).not.toMatch(/secretKeyRef/);
    expect(c.lifecycle.preStop.sleep.seconds).toBe(PRESTOP_SLEEP_S);
  });

  it('flotilla services probe the runtime endpoints and outlast its drain', () => {
    for (const name of ['orchestrator', 'researcher', 'coder', 'sandbox']) {
      const pod = byName(name)?.spec.template.spec;
      const c = pod.containers[0];
      expect([c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path, c.startupProbe.httpGet.path]).toEqual([
        '/livez',
        '/readyz',
        '/startupz',
      ]);
      const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
      expect(Number(env.SHUTDOWN_GRACE_MS)).toBe(SHUTDOWN_GRACE_MS);
      // The kubelet's clock starts with preStop; the drain then has SHUTDOWN_GRACE_MS, close/flush the rest.
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(PRESTOP_SLEEP_S + SHUTDOWN_GRACE_MS / 1000);
    }
  });

  it('every Deployment has a PodDisruptionBudget', () => {
    const pdbs = objects
      .filter((o) => o.kind === 'PodDisruptionBudget')
      .map((o) => o.spec.selector.matchLabels['app.kubernetes.io/name']);
    const deployments = workloads.filter((w) => w.kind === 'Deployment').map((w) => w.metadata.name);
    expect(pdbs.sort()).toEqual(deployments.sort());
  });
});

// ---- who may reach whom, evaluated over the NetworkPolicies as a cluster would ----
type Peer = { podSelector?: Selector; namespaceSelector?: Selector; ipBlock?: { cidr: string } };
type Rule = { to?: Peer[]; from?: Peer[] };
type Selector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values: string[] }[];
};
const matches = (sel: Selector, labels: Record<string, string>) =>
  Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
  (sel.matchExpressions ?? []).every((e) => (e.operator === 'In') === e.values.includes(labels[e.key] ?? ''));
const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
const peerAllows = (peers: Peer[] | undefined, labels: Record<string, string>) =>
  (peers ?? []).some((p) => p.podSelector && !p.namespaceSelector && matches(p.podSelector, labels));
function canReach(from: Obj, to: Obj): boolean {
  const a = podLabels(from);
  const b = podLabels(to);
  const out = policies.some(
    (p) =>
      p.spec.policyTypes.includes('Egress') &&
      matches(p.spec.podSelector, a) &&
      (p.spec.egress ?? []).some((r: Rule) => peerAllows(r.to, b)),
  );
  const inn = policies.some(
    (p) =>
      p.spec.policyTypes.includes('Ingress') &&
      matches(p.spec.podSelector, b) &&
      (p.spec.ingress ?? []).some((r: Rule) => peerAllows(r.from, a)),
  );
  return out && inn;
}
const reachersOf = (name: string) =>
  workloads
    .filter((w) => w.metadata.name !== name && canReach(w, byName(name) as Obj))
    .map((w) => w.metadata.name)
    .sort();
const egressRulesOf = (name: string) =>
  policies
    .filter((p) => p.spec.policyTypes.includes('Egress') && matches(p.spec.podSelector, podLabels(byName(name) as Obj)))
    .flatMap((p) => p.spec.egress ?? []);

describe('NetworkPolicies mirror the Compose networks', () => {
  it('denies everything not allowed', () => {
    expect(policies.find((p) => p.metadata.name === 'default-deny')?.spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
  });

  it('the sandbox is reachable from the coder alone, and reaches nobody', () => {
    expect(reachersOf('sandbox')).toEqual(['coder']);
    const sandbox = byName('sandbox') as Obj;
    expect(workloads.filter((w) => w !== sandbox && canReach(sandbox, w)).map((w) => w.metadata.name)).toEqual([
      'coder',
    ]);
    expect(JSON.stringify(egressRulesOf('sandbox'))).not.toContain('ipBlock');
  });

  it('Redis and Chroma have no egress at all, and Chroma answers only its gate', () => {
    expect(egressRulesOf('redis')).toEqual([]);
    expect(egressRulesOf('chroma')).toEqual([]);
    expect(reachersOf('chroma')).toEqual(['chroma-gate']);
    expect(reachersOf('redis')).toEqual(['chroma-gate', 'coder', 'orchestrator', 'otel-collector', 'researcher']);
  });

  it('the egress proxy is the only way out', () => {
    const outside = workloads
      .filter((w) => JSON.stringify(egressRulesOf(w.metadata.name)).includes('ipBlock'))
      .map((w) => w.metadata.name);
    expect(outside).toEqual(['egress-proxy']);
    expect(reachersOf('egress-proxy')).toEqual(['coder', 'orchestrator', 'researcher']);
  });

  it('the control: a rule letting the researcher onto the sandbox network is seen', () => {
    const researcher = byName('researcher') as Obj;
    const labels = podLabels(researcher);
    labels['net.flotilla.dev/sandbox'] = 'true';
    try {
      expect(reachersOf('sandbox')).toEqual(['coder', 'researcher']);
    } finally {
      delete labels['net.flotilla.dev/sandbox'];
    }
  });
});

describe('the egress proxy names Kubernetes callers', () => {
  // The proxy's own entrypoint, printing the squid.conf it would run (squid itself is not needed).
  const config = (mode: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-'));
    try {
      return execFileSync('sh', [join(repoRoot, 'compose/egress-proxy/entrypoint.sh'), '--print-config'], {
        env: {
          PATH: process.env.PATH,
          EGRESS_CALLER_NAMES: mode,
          EGRESS_SERVICES: 'researcher coder',
          EGRESS_SQUID_CONF: join(dir, 'squid.conf'),
        },
        encoding: 'utf8',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const regexFor = (conf: string, svc: string) =>
    new RegExp(new RegExp(`acl svc_${svc} srcdom_regex -i (\\S+)`).exec(conf)?.[1] ?? '$^', 'i');

  it('by the headless <service>-caller Service the manifests give each caller', () => {
    const conf = config('kubernetes');
    expect(regexFor(conf, 'RESEARCHER').test('10-244-1-7.researcher-caller.flotilla.svc.cluster.local')).toBe(true);
    expect(regexFor(conf, 'RESEARCHER').test('10-244-1-8.coder-caller.flotilla.svc.cluster.local')).toBe(false);
    expect(regexFor(conf, 'CODER').test('10-244-1-8.coder-caller.flotilla.svc.cluster.local')).toBe(true);
    const headless = objects
      .filter((o) => o.kind === 'Service' && o.spec.clusterIP === 'None')
      .map((o) => o.metadata.name);
    expect(headless.sort()).toEqual(['coder-caller', 'orchestrator-caller', 'researcher-caller']);
    const proxyEnv = byName('egress-proxy')?.spec.template.spec.containers[0].env;
    expect(proxyEnv).toContainEqual({ name: 'EGRESS_CALLER_NAMES', value: 'kubernetes' });
  });

  it('and still by Compose container names by default', () => {
    expect(regexFor(config('compose'), 'RESEARCHER').test('flotilla-researcher-2.flotilla_outbound')).toBe(true);
  });
});

describe('autoscaling', () => {
  const scaled = objects.filter((o) => o.kind === 'ScaledObject');
  it('KEDA watches each worker role on the lists BullMQ keeps for its queue', () => {
    expect(scaled.map((s) => s.metadata.name).sort()).toEqual(['coder', 'researcher']);
    for (const s of scaled) {
      const role = s.metadata.name;
      const prefix = byName(role)?.spec.template.spec.containers[0].env.find(
        (e: { name: string }) => e.name === 'QUEUE_PREFIX',
      ).value;
      const keys = new QueueKeys(prefix).getKeys(queueNames.role(role));
      expect(s.spec.triggers.map((t: { metadata: { listName: string } }) => t.metadata.listName)).toEqual([
        keys.wait,
        keys.active,
      ]);
      expect(s.spec.scaleTargetRef.name).toBe(role);
    }
  });

  it('an overlay that lets KEDA take a role to zero also makes that role declare it (WORKER_SCALE_TO_ZERO)', () => {
    type Patch = { target: { kind: string; name: string }; patch: string };
    const overlays = join(repoRoot, 'deploy/k8s/overlays');
    const atZero: string[] = [];
    for (const overlay of readdirSync(overlays)) {
      const k = parse(readFileSync(join(overlays, overlay, 'kustomization.yaml'), 'utf8')) as { patches?: Patch[] };
      const ops = (kind: string) =>
        (k.patches ?? [])
          .filter((p) => p.target.kind === kind)
          .flatMap((p) =>
            (parse(p.patch) as { op: string; path: string; value: unknown }[]).map((op) => ({
              ...op,
              role: p.target.name,
            })),
          );
      for (const { role } of ops('ScaledObject').filter((o) => o.path === '/spec/minReplicaCount' && o.value === 0)) {
        atZero.push(`${overlay}/${role}`);
        expect(ops('Deployment'), `${overlay}: ${role} scales to zero`).toContainEqual(
          expect.objectContaining({ role, op: 'add', value: { name: 'WORKER_SCALE_TO_ZERO', value: 'true' } }),
        );
      }
    }
    // The base keeps every role at one replica at least; prod-zero is where the researcher goes to zero.
    expect(scaled.map((s) => s.spec.minReplicaCount)).toEqual([1, 1]);
    expect(atZero).toEqual(['prod-zero/researcher']);
  });

  it('an HPA on CPU for each worker role as the fallback', () => {
    const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual(scaled.map((s) => s.metadata.name).sort());
  });
});

describe('the Redis Cluster variant (components/redis-cluster)', () => {
  type EnvVar = { name: string; value?: string; $patch?: string };
  const patches = parsed(generated[`${CLUSTER_DIR}services.yaml`] as string);
  const envOf = (o: Obj): EnvVar[] => o.spec.template.spec.containers[0].env;

  it('moves every service that uses Redis onto the cluster, with a prefix and nodes the services accept', () => {
    const usingRedis = workloads.filter((w) => w.kind === 'Deployment' && envOf(w).some((e) => e.name === 'REDIS_URL'));
    expect(patches.map((p) => p.metadata.name).sort()).toEqual(usingRedis.map((w) => w.metadata.name).sort());
    for (const patch of patches) {
      const env = envOf(patch);
      expect(env).toContainEqual({ name: 'REDIS_URL', $patch: 'delete' });
      const set = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      // What the service itself checks at start (exit 78 otherwise): a tagged prefix, host:port nodes.
      expect(() =>
        loadConfig(baseConfigSchema, { env: set, check: (c) => redisClusterProblems(c, set) }),
      ).not.toThrow();
      expect(clusterHashTag(set.QUEUE_PREFIX as string)).toBe('flotilla');
    }
  });

  it('scales each worker role with the redis-cluster trigger on the tagged prefix’s lists', () => {
    const scaledObjects = parsed(generated[`${CLUSTER_DIR}scaled-objects.yaml`] as string).filter(
      (o) => o.kind === 'ScaledObject',
    );
    expect(scaledObjects.map((s) => s.metadata.name).sort()).toEqual(['coder', 'researcher']);
    const prefix = envOf(patches[0] as Obj).find((e) => e.name === 'QUEUE_PREFIX')?.value as string;
    for (const s of scaledObjects) {
      const keys = new QueueKeys(prefix).getKeys(queueNames.role(s.metadata.name));
      expect(s.spec.triggers).toEqual([
        expect.objectContaining({
          type: 'redis-cluster',
          metadata: expect.objectContaining({ addressesFromEnv: 'REDIS_CLUSTER_NODES', listName: keys.wait }),
        }),
        expect.objectContaining({
          type: 'redis-cluster',
          metadata: expect.objectContaining({ addressesFromEnv: 'REDIS_CLUSTER_NODES', listName: keys.active }),
        }),
      ]);
    }
  });
});
