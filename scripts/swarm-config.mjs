#!/usr/bin/env node
// Writes compose/compose.stack.yaml: compose/compose.yaml as `docker stack deploy` accepts it.
//
//   node scripts/swarm-config.mjs [--profile NAME]... [--out FILE | --check]
//   docker stack deploy -c compose/compose.stack.yaml -c compose/compose.swarm.yaml flotilla
//
// Why a generated file: the stack deploy's own Compose loader (docker/cli) refuses keys that Compose
// needs, each with an error, not a warning: mem_limit ("forbidden property"), cpus, pids_limit,
// profiles, runtime (not in its schema) and depends_on with conditions ("must be a list"). Removing
// them from compose.yaml would leave `docker compose up` without limits or start order, so
// compose.yaml stays the one file people edit and this translation is the only Swarm copy; the
// static test (test/static/swarm-config.test.ts) fails when the committed copy is stale.
// compose/compose.swarm.yaml then adds what only Swarm has (replicas, placement, reservations).
// docs/swarm.md lists each rule and what Swarm cannot enforce.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

const composeDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'compose');
export const composePath = join(composeDir, 'compose.yaml');
export const stackPath = join(composeDir, 'compose.stack.yaml');

const HEADER = `# GENERATED from compose.yaml by scripts/swarm-config.mjs: do not edit; edit compose.yaml and run
#   node scripts/swarm-config.mjs
# For Swarm only (docs/swarm.md):
#   docker stack deploy -c compose/compose.stack.yaml -c compose/compose.swarm.yaml flotilla
`;

/** Compose's `restart:` as Swarm's restart_policy.condition. */
const RESTART = { no: 'none', always: 'any', 'unless-stopped': 'any', 'on-failure': 'on-failure' };

/**
 * The stack loader does not read a default that holds another variable (`${A:-x${B:-y}}`: the image
 * override `flotilla rollout` sets): keep the inner default, the image Compose runs when A is unset.
 * In Swarm a rollout is `docker service update --image` (docs/swarm.md).
 */
const flattenDefaults = (value) =>
  JSON.parse(JSON.stringify(value).replace(/\$\{\w+:-([^{}]*\$\{[^{}]*\}[^{}]*)\}/g, '$1'));

/**
 * `[IP:]HOST:CONTAINER[/proto]` as a long-syntax port Swarm accepts. The stack loader wants a number
 * for `published` and does not interpolate it into one, so `${VAR:-default}` is resolved here, from
 * `env` (the committed file: the default).
 */
function swarmPort(port, env) {
  if (typeof port !== 'string') return port;
  const resolved = port.replace(/\$\{(\w+):-([^}]*)\}/g, (_, name, dflt) => env[name] || dflt);
  const [spec, protocol = 'tcp'] = resolved.split('/');
  const parts = spec.split(':');
  const target = Number(parts.at(-1));
  const published = Number(parts.at(-2));
  if (!Number.isInteger(published)) throw new Error(`swarm-config: cannot read the port ${port}`);
  // Host mode: published on the node that runs the task, without the routing mesh (which needs IPVS,
  // and answers on every node). Swarm binds no host address: the IP part cannot be kept (docs/swarm.md).
  return { target, published, protocol, mode: 'host' };
}

/** `/tmp:size=64m,mode=1777` as a tmpfs mount: Swarm ignores the service-level tmpfs list. */
function tmpfsMount(entry) {
  const [target, opts = ''] = entry.split(':');
  const mount = { type: 'tmpfs', target };
  const size = /(?:^|,)size=([^,]+)/.exec(opts)?.[1];
  const mode = /(?:^|,)mode=([0-7]+)/.exec(opts)?.[1];
  if (size || mode)
    mount.tmpfs = { ...(size && { size: bytes(size) }), ...(mode && { mode: Number.parseInt(mode, 8) }) };
  return mount;
}

function bytes(size) {
  const m = /^(\d+)([kmg]?)b?$/i.exec(String(size));
  if (!m) throw new Error(`swarm-config: cannot read the size ${size}`);
  return Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
}

/**
 * compose.yaml's text -> the stack file's object. `profiles` picks optional services as
 * `docker compose --profile` would; without it they are left out, as `docker compose up` leaves them.
 * `env` resolves what Swarm cannot interpolate (published ports); the committed file uses defaults.
 */
export function swarmConfig(text, { profiles = [], env = {} } = {}) {
  const src = parse(text, { merge: true });
  // Docker 20.10's CLI (Debian's docker.io) refuses a file without a version ("unsupported Compose
  // file version: 1.0"); 3.9 is the newest it knows, and later CLIs still read it, pids limits included.
  const out = { version: '3.9', services: {}, networks: {}, volumes: src.volumes ?? {}, secrets: src.secrets ?? {} };
  const usedNetworks = new Set();
  for (const [name, svc] of Object.entries(src.services)) {
    if (svc.profiles && !svc.profiles.some((p) => profiles.includes(p))) continue;
    const {
      profiles: _profiles,
      build: _build, // the stack deploys images; build them first (docs/swarm.md)
      depends_on: _dependsOn, // Swarm starts everything at once; restart_policy retries until deps answer
      runtime: _runtime, // no per-service runtime in Swarm: the node's default-runtime (docs/swarm.md)
      mem_limit,
      cpus,
      pids_limit,
      restart,
      tmpfs,
      ports,
      network_mode,
      ...rest
    } = svc;
    const s = { ...rest };
    const deploy = structuredClone(s.deploy ?? {});
    const limits = { ...(deploy.resources?.limits ?? {}) };
    if (mem_limit !== undefined) limits.memory = mem_limit;
    if (cpus !== undefined) limits.cpus = String(cpus);
    if (pids_limit !== undefined) limits.pids = pids_limit;
    if (Object.keys(limits).length) deploy.resources = { ...(deploy.resources ?? {}), limits };
    if (restart !== undefined && !deploy.restart_policy)
      deploy.restart_policy = { condition: RESTART[restart] ?? 'any' };
    // DNS round robin, not a virtual IP: the VIP is IPVS in the kernel, which some kernels lack; each
    // service here is either one replica or a queue consumer that nobody dials.
    deploy.endpoint_mode = 'dnsrr';
    s.deploy = deploy;
    if (tmpfs) s.volumes = [...(s.volumes ?? []), ...tmpfs.map(tmpfsMount)];
    if (ports) s.ports = ports.map((p) => swarmPort(p, env));
    if (network_mode === 'none') {
      // No network in Swarm means the stack's default one: give it one that nobody else joins.
      s.networks = ['isolated'];
      out.networks.isolated = { driver: 'overlay', internal: true };
    }
    for (const n of s.networks ?? []) usedNetworks.add(n);
    out.services[name] = flattenDefaults(s);
  }
  for (const [name, net] of Object.entries(src.networks ?? {})) {
    if (usedNetworks.has(name)) out.networks[name] = { driver: 'overlay', ...(net ?? {}) };
  }
  const usedSecrets = new Set(Object.values(out.services).flatMap((s) => s.secrets ?? []));
  out.secrets = Object.fromEntries(Object.entries(out.secrets).filter(([k]) => usedSecrets.has(k)));
  return out;
}

/**
 * The stack file's text, header included. Written as YAML 1.1, which quotes `"yes"` and the like:
 * Docker 20.10's CLI reads YAML 1.1, where a bare yes is a boolean (Redis's `--appendonly yes`).
 */
export const swarmConfigText = (text, opts = {}) =>
  HEADER + stringify(swarmConfig(text, opts), { version: '1.1', lineWidth: 0, aliasDuplicateObjects: false });

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const profiles = [];
  let outFile = stackPath;
  let check = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--profile') profiles.push(args[++i]);
    else if (args[i] === '--out') outFile = args[++i];
    else if (args[i] === '--check') check = true;
    else {
      console.error(`swarm-config: unknown option ${args[i]}`);
      process.exit(2);
    }
  }
  const text = swarmConfigText(readFileSync(composePath, 'utf8'), { profiles });
  if (check) {
    const current = readFileSync(stackPath, 'utf8');
    if (current !== text) {
      console.error('swarm-config: compose/compose.stack.yaml is stale: run node scripts/swarm-config.mjs');
      process.exit(1);
    }
  } else if (outFile === '-') process.stdout.write(text);
  else writeFileSync(outFile, text);
}
