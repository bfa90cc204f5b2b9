// Outbound HTTP through the egress proxy. In Compose the agent services sit on an internal network
// whose only way out is the proxy (compose/README.md, "Egress"); they find it in HTTPS_PROXY /
// HTTP_PROXY and skip it for the internal names in NO_PROXY. Node's fetch reads none of these, so
// the runtime installs undici's EnvHttpProxyAgent as the global dispatcher, which Node's bundled fetch
// (undici 6 in Node 20, 7 in Node 24) uses for every request, the LLM clients' and Chroma's included.
import { type Agent, EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';

type Env = Record<string, string | undefined>;

/** The proxy settings as undici reads them: lower case wins over upper case, as curl does. */
export interface EgressProxySettings {
  httpProxy: string | undefined;
  httpsProxy: string | undefined;
  noProxy: string;
}

const pick = (env: Env, name: string): string | undefined => {
  const v = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return v?.trim() ? v.trim() : undefined;
};

export function egressProxySettings(env: Env = process.env): EgressProxySettings {
  const httpProxy = pick(env, 'http_proxy');
  return { httpProxy, httpsProxy: pick(env, 'https_proxy') ?? httpProxy, noProxy: pick(env, 'no_proxy') ?? '' };
}

/** A proxy URL for logs: scheme, host and port only, so credentials in it never reach a log line. */
export function describeProxy(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(unparseable)';
  }
}

/**
 * A dispatcher that sends requests through the proxy the environment names, and connects directly to
 * NO_PROXY hosts (and to everything when no proxy is set). `agent` options (e.g. `connect.lookup`)
 * apply to the direct connections only: through a proxy the client never resolves the target.
 */
export function createEgressDispatcher(env: Env = process.env, agent: Agent.Options = {}): EnvHttpProxyAgent {
  const s = egressProxySettings(env);
  return new EnvHttpProxyAgent({ ...agent, httpProxy: s.httpProxy, httpsProxy: s.httpsProxy, noProxy: s.noProxy });
}

/**
 * Makes every fetch in this process honour HTTP(S)_PROXY and NO_PROXY. Does nothing when neither
 * proxy variable is set (local development, tests), so the default dispatcher stays. Returns what it
 * installed, for the start-up log line.
 */
export function installEgressProxy(
  env: Env = process.env,
): { httpProxy: string | undefined; httpsProxy: string | undefined; noProxy: string } | undefined {
  const s = egressProxySettings(env);
  if (!s.httpProxy && !s.httpsProxy) return undefined;
  setGlobalDispatcher(createEgressDispatcher(env));
  return { httpProxy: describeProxy(s.httpProxy), httpsProxy: describeProxy(s.httpsProxy), noProxy: s.noProxy };
}
