// The hardening policy every flotilla service in compose/compose.yaml must keep, as a pure function over
// the parsed file, so the test can prove each rule fails when its key goes missing.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAlias, isMap, isScalar, parse, parseDocument } from 'yaml';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const composePath = `${repoRoot}compose/compose.yaml`;

/** The runtime's drain time (SHUTDOWN_GRACE_MS default); stop_grace_period must exceed it. */
export const SHUTDOWN_GRACE_MS = 25_000;
/** Services that call an LLM API (or the web): they go out only through the egress proxy. */
export const AGENT_SERVICES = ['orchestrator', 'researcher', 'coder'];
/** The only service on the egress network: every other container's way out (compose/README.md). */
export const EGRESS_PROXY = 'egress-proxy';
/** Where the agent services find it (the runtime makes fetch honour these). */
export const EGRESS_PROXY_URL = 'http://egress-proxy:3128';
/**
 * Services that run model-written code: they join only the internal `sandbox` network (so neither
 * backend rule, the network nor waiting for Redis and Chroma, applies) and carry a seccomp profile file
 * of the project's own.
 */
export const SANDBOX_SERVICES = ['sandbox'];
/**
 * The local model server (profile local-model): it calls nothing, so it joins only the internal
 * `models` network, which only the agent services share with it (no Redis user, no backend).
 */
export const MODEL_SERVICES = ['model-server'];
/**
 * MCP servers that are tool sources (profile mcp, docs/mcp.md): each calls nothing, joins only its own
 * internal `mcp-<service>` network, and shares it with the agent services that use it alone.
 */
export const MCP_SERVICES = ['mcp-everything'];
/** Backing services that must sit only on internal networks. */
export const BACKEND_ONLY = ['redis', 'chroma', 'chroma-gate', 'otel-collector'];
/** Chroma checks no credentials itself: it shares the internal `memory` network with its token gate alone. */
export const MEMORY_SERVICES = ['chroma', 'chroma-gate'];
/** Third-party services that hold data or a door to it: non-root, read-only, nothing more than they need. */
export const HARDENED_THIRD_PARTY = ['redis', 'chroma', 'chroma-gate'];

export type Compose = {
  name?: unknown;
  services: Record<string, Service>;
  networks?: Record<string, { internal?: boolean } | null>;
  secrets?: Record<string, { file?: string; environment?: string }>;
};
export type Service = Record<string, unknown> & {
  image?: string;
  build?: unknown;
  networks?: string[] | Record<string, unknown>;
};

export function loadCompose(path = composePath): Compose {
  return parse(readFileSync(path, 'utf8'), { merge: true }) as Compose;
}

/** Services built from the flotilla Dockerfile (the ones the hardening anchor is for). */
export function flotillaServices(compose: Compose): string[] {
  return Object.entries(compose.services)
    .filter(([, s]) => s.build !== undefined || s.image?.startsWith('flotilla/'))
    .map(([name]) => name);
}

/** Compose durations ("35s", "1m30s", "500ms") in milliseconds; NaN when unparseable. */
export function durationMs(value: unknown): number {
  if (typeof value !== 'string') return Number.NaN;
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  let total = 0;
  let rest = value.trim();
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|us|h|m|s)/.exec(rest);
    if (!m) return Number.NaN;
    total += Number(m[1]) * (units[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return total;
}

const networksOf = (s: Service): string[] => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));

/** Every rule the compose file breaks, one readable line each; empty when it complies. */
export function composeViolations(compose: Compose): string[] {
  const v: string[] = [];
  const fail = (svc: string, msg: string) => v.push(`${svc}: ${msg}`);

  if ('name' in compose) v.push('top-level name: is rejected by docker-compose 1.29 (use COMPOSE_PROJECT_NAME)');
  const flotilla = flotillaServices(compose);
  for (const required of ['orchestrator', 'researcher', 'coder']) {
    if (!flotilla.includes(required)) v.push(`${required}: missing or not built from the Dockerfile`);
  }

  for (const name of flotilla) {
    const s = compose.services[name] as Service;
    const user = String(s.user ?? '');
    if (!/^[1-9]\d*(:\d+)?$/.test(user)) fail(name, `user must be a numeric non-root uid, got "${user}"`);
    if (s.read_only !== true) fail(name, 'read_only: true is missing');
    const tmpfs = ([] as unknown[]).concat(s.tmpfs ?? []).map(String);
    if (!tmpfs.some((t) => t === '/tmp' || t.startsWith('/tmp:'))) fail(name, 'tmpfs /tmp is missing');
    const caps = ([] as unknown[]).concat(s.cap_drop ?? []).map(String);
    if (!caps.includes('ALL')) fail(name, 'cap_drop: [ALL] is missing');
    const secOpt = ([] as unknown[]).concat(s.security_opt ?? []).map(String);
    if (!secOpt.some((o) => /^no-new-privileges(:true)?$/.test(o))) fail(name, 'security_opt no-new-privileges');
    if (s.init !== true) fail(name, 'init: true is missing');
    for (const key of ['mem_limit', 'cpus', 'pids_limit']) {
      if (s[key] === undefined || s[key] === null) fail(name, `${key} is missing`);
    }
    const deploy = (s.deploy ?? {}) as Record<string, Record<string, unknown>>;
    const limits = (deploy.resources?.limits ?? {}) as Record<string, unknown>;
    if ('pids' in limits) fail(name, 'deploy.resources.limits.pids is rejected by docker-compose 1.29');
    if (Object.keys(limits).length > 0) {
      fail(
        name,
        'deploy.resources.limits: Swarm gets them from compose.stack.yaml (compose-go rejects them beside pids_limit)',
      );
    }
    const update = deploy.update_config ?? {};
    if (update.order !== 'start-first') fail(name, 'deploy.update_config.order must be start-first');
    if (update.failure_action !== 'rollback') fail(name, 'deploy.update_config.failure_action must be rollback');
    const hc = (s.healthcheck ?? {}) as Record<string, unknown>;
    if (!Array.isArray(hc.test) || hc.test[0] !== 'CMD') fail(name, 'healthcheck.test must be an exec-form CMD');
    if (hc.disable === true) fail(name, 'healthcheck is disabled');
    if (!(durationMs(hc.start_period) > 0)) fail(name, 'healthcheck.start_period is missing');
    if (!['always', 'unless-stopped', 'on-failure'].some((p) => String(s.restart ?? '').startsWith(p))) {
      fail(name, 'restart policy is missing');
    }
    if (!(durationMs(s.stop_grace_period) > SHUTDOWN_GRACE_MS)) {
      fail(name, `stop_grace_period must exceed SHUTDOWN_GRACE_MS (${SHUTDOWN_GRACE_MS} ms)`);
    }
    const logging = (s.logging ?? {}) as { driver?: string; options?: Record<string, unknown> };
    if (logging.driver !== 'json-file' || !logging.options?.['max-size'] || !logging.options?.['max-file']) {
      fail(name, 'logging must be json-file with max-size and max-file');
    }
    const sandboxed = SANDBOX_SERVICES.includes(name);
    const modelServer = MODEL_SERVICES.includes(name);
    const mcpServer = MCP_SERVICES.includes(name);
    // The proxy needs no Redis, Chroma or collector and joins only outbound and egress; the model
    // server, MCP servers and the sandbox call nothing at all.
    const standalone = sandboxed || modelServer || mcpServer || name === EGRESS_PROXY;
    if (mcpServer && networksOf(s).join() !== name) fail(name, `must join only its own ${name} network`);
    if (modelServer && networksOf(s).join() !== 'models') fail(name, 'must join only the models network');
    if (sandboxed) {
      const nets = networksOf(s);
      if (nets.length !== 1 || nets[0] !== 'sandbox') fail(name, 'must join only the sandbox network');
      const seccomp = secOpt.find((o) => /^seccomp[:=]/.test(o));
      if (!seccomp || /unconfined$/.test(seccomp)) fail(name, 'security_opt seccomp must name a profile file');
      if (typeof s.runtime !== 'string')
        fail(name, 'runtime must be set (to the SANDBOX_RUNTIME variable, default runc)');
    }
    const deps = (s.depends_on ?? {}) as Record<string, { condition?: string }>;
    const env = (s.environment ?? {}) as Record<string, unknown>;
    // Memory goes through Chroma's token gate: whoever has CHROMA_URL waits for it, and holds the token.
    const needs = standalone ? [] : ['redis', ...(env.CHROMA_URL ? ['chroma-gate'] : [])];
    for (const dep of needs) {
      if (deps[dep]?.condition !== 'service_healthy') fail(name, `depends_on ${dep} with condition service_healthy`);
    }
    if (!standalone && !deps['otel-collector']) fail(name, 'depends_on otel-collector is missing');
    if (env.CHROMA_URL && !env.CHROMA_TOKEN_FILE) fail(name, 'CHROMA_URL without CHROMA_TOKEN_FILE');
    if (!standalone && !(env.REDIS_USERNAME && env.REDIS_PASSWORD_FILE)) {
      fail(name, 'must log in to Redis as its own user (REDIS_USERNAME, REDIS_PASSWORD_FILE)');
    }
    for (const key of Object.keys(env)) {
      if (/(TOKEN|API_KEY|SECRET|PASSWORD)$/i.test(key)) fail(name, `${key} must come from a *_FILE secret`);
    }
    if (!standalone && !networksOf(s).includes('backend')) fail(name, 'must join the backend network');
    if (AGENT_SERVICES.includes(name)) {
      if (!networksOf(s).includes('outbound')) fail(name, 'must join the outbound network (its way to the proxy)');
      for (const key of ['HTTP_PROXY', 'HTTPS_PROXY']) {
        if (env[key] !== EGRESS_PROXY_URL) fail(name, `${key} must be ${EGRESS_PROXY_URL}`);
      }
    }
  }

  // Egress: the proxy alone on egress; outbound reaches only the proxy (internal, no route out).
  for (const [name, s] of Object.entries(compose.services)) {
    if (networksOf(s).includes('egress') && name !== EGRESS_PROXY) fail(name, `joins egress: only ${EGRESS_PROXY} may`);
  }
  const proxy = compose.services[EGRESS_PROXY];
  if (!proxy) v.push(`${EGRESS_PROXY}: service is missing`);
  else if (networksOf(proxy).sort().join(',') !== 'egress,outbound')
    fail(EGRESS_PROXY, 'must join exactly outbound and egress');

  const researcher = compose.services.researcher;
  if (researcher) {
    if ('container_name' in researcher) fail('researcher', 'container_name prevents --scale');
    if ('ports' in researcher) fail('researcher', 'host ports prevent --scale');
  }

  const networks = compose.networks ?? {};
  for (const net of ['backend', 'sandbox', 'outbound', 'models']) {
    if (networks[net]?.internal !== true) v.push(`networks.${net}: must be internal`);
  }
  for (const name of BACKEND_ONLY) {
    const s = compose.services[name];
    if (!s) {
      v.push(`${name}: service is missing`);
      continue;
    }
    for (const net of networksOf(s)) {
      if (networks[net]?.internal !== true) fail(name, `joins non-internal network ${net}`);
    }
  }
  for (const [name, s] of Object.entries(compose.services)) {
    if (networksOf(s).includes('sandbox') && name !== 'coder' && name !== 'sandbox') {
      fail(name, 'only the coder shares the sandbox network');
    }
    if (networksOf(s).includes('models') && !AGENT_SERVICES.includes(name) && !MODEL_SERVICES.includes(name)) {
      fail(name, 'only the agent services share the models network with the model server');
    }
    if (networksOf(s).includes('memory') && !MEMORY_SERVICES.includes(name)) {
      fail(name, 'only chroma and its gate share the memory network');
    }
    for (const net of networksOf(s).filter((n) => MCP_SERVICES.includes(n))) {
      if (net !== name && !AGENT_SERVICES.includes(name)) fail(name, `only agent services share the ${net} network`);
    }
  }
  for (const net of MCP_SERVICES) {
    if (compose.services[net] && networks[net]?.internal !== true) v.push(`networks.${net}: must be internal`);
  }
  if (networks.memory?.internal !== true) v.push('networks.memory: must be internal');
  const chroma = compose.services.chroma;
  if (chroma && networksOf(chroma).join() !== 'memory') fail('chroma', 'must join only the memory network');
  for (const name of HARDENED_THIRD_PARTY) {
    const s = compose.services[name];
    if (!s) continue;
    const user = String(s.user ?? '');
    if (!/^[1-9]\d*(:\d+)?$/.test(user)) fail(name, `user must be a numeric non-root uid, got "${user}"`);
    if (s.read_only !== true) fail(name, 'read_only: true is missing');
    if (
      !([] as unknown[])
        .concat(s.cap_drop ?? [])
        .map(String)
        .includes('ALL')
    )
      fail(name, 'cap_drop: [ALL] is missing');
    if ('cap_add' in s) fail(name, 'adds capabilities');
    const secOpt = ([] as unknown[]).concat(s.security_opt ?? []).map(String);
    if (!secOpt.some((o) => /^no-new-privileges(:true)?$/.test(o))) fail(name, 'security_opt no-new-privileges');
    for (const key of ['mem_limit', 'pids_limit']) if (s[key] === undefined) fail(name, `${key} is missing`);
  }
  const redis = compose.services.redis;
  if (redis) {
    const command = ([] as unknown[]).concat(redis.command ?? []).map(String);
    const entry = ([] as unknown[]).concat(redis.entrypoint ?? []).map(String);
    if (command.includes('--protected-mode')) fail('redis', 'must not turn protected-mode off');
    if (!entry.some((a) => a.endsWith('users-acl.sh'))) fail('redis', 'must start through users-acl.sh (its ACL file)');
  }
  for (const [name, secret] of Object.entries(compose.secrets ?? {})) {
    if (!secret.file) v.push(`secrets.${name}: must be a file`);
  }
  return v;
}

/** Flotilla services whose YAML node does not merge the x-flotilla-service anchor. */
export function servicesNotUsingAnchor(source: string, anchor = 'flotilla-service'): string[] {
  const doc = parseDocument(source, { merge: true });
  const services = doc.get('services');
  const parsed = doc.toJS({ maxAliasCount: -1 }) as Compose;
  const missing: string[] = [];
  if (!isMap(services)) return flotillaServices(parsed);
  for (const name of flotillaServices(parsed)) {
    const node = services.get(name);
    const merges =
      isMap(node) &&
      node.items.some(
        (pair) =>
          // yaml's merge key is a Scalar whose source (not value) is '<<'.
          isScalar(pair.key) &&
          (pair.key.source === '<<' || pair.key.value === '<<') &&
          isAlias(pair.value) &&
          pair.value.source === anchor,
      );
    if (!merges) missing.push(name);
  }
  return missing;
}
