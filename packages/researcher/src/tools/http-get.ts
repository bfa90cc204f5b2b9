import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { createEgressDispatcher, defineTool, FlotillaError } from '@flotilla/runtime';
import picomatch from 'picomatch';
import { type Dispatcher, request } from 'undici';
import { z } from 'zod';

/** What http.get reads from the environment. */
export const httpConfigSchema = z.object({
  /**
   * What the researcher may fetch: a comma list of `host`, `host:port` and either followed by a path
   * prefix (`docs.example.com/api/v2`); hosts are globs (`*.wikipedia.org`). Without a port an entry
   * allows the scheme's default port only; a path prefix matches whole segments (`/api` covers
   * `/api/x`, not `/apix`). Empty (the default) allows none. Private and loopback addresses are refused
   * even for an allowed name unless the address itself is listed (e.g. `127.0.0.1:8080`), which stops
   * DNS rebinding. The egress proxy is given the same hosts and ports (compose/compose.yaml).
   */
  HTTP_ALLOWLIST: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    ),
  /** Response bodies are cut off (and the call fails) past this many bytes. */
  HTTP_MAX_BYTES: z.coerce.number().int().positive().default(1_000_000),
  /** Redirects followed, each re-checked against the allowlist. */
  HTTP_MAX_REDIRECTS: z.coerce.number().int().nonnegative().default(5),
  /** Longest query string (without the `?`) a URL may carry: long queries are how data leaves. */
  HTTP_MAX_QUERY_LENGTH: z.coerce.number().int().nonnegative().default(512),
  /** Per-attempt timeout; the tool gateway enforces it. */
  HTTP_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
});
export type HttpConfig = z.output<typeof httpConfigSchema>;

/** Why http.get refused a URL; each is a documented, stable value. */
export type HttpPolicyReason =
  | 'scheme' // not http or https
  | 'host' // host (or host:port) on no allowlist entry
  | 'path' // host allowed, but the path is under none of its entries' prefixes
  | 'query_too_long' // query string longer than HTTP_MAX_QUERY_LENGTH
  | 'private_address' // resolves to (or is) a private address that is not itself listed
  | 'redirects' // more than HTTP_MAX_REDIRECTS
  | 'proxy_denied'; // the egress proxy refused the target (403)

/** A request the policy refuses. Not retryable: asking again gets the same answer. */
export class HttpPolicyError extends FlotillaError {
  readonly retryable = false;
  readonly stopReason = 'policy_denied' as const;
  constructor(
    message: string,
    readonly reason: HttpPolicyReason = 'host',
    options?: { cause?: unknown },
  ) {
    super('FLOTILLA_HTTP_POLICY', message, options);
  }
}

export class HttpResponseTooLargeError extends FlotillaError {
  readonly retryable = false;
  constructor(limit: number) {
    super('FLOTILLA_HTTP_TOO_LARGE', `response exceeds ${limit} bytes`);
  }
}

const privateRanges = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
] as const) {
  privateRanges.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const) {
  privateRanges.addSubnet(net, bits, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return privateRanges.check(mapped[1], 'ipv4');
  return privateRanges.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** One allowlist entry: a host glob, an optional port, an optional path prefix. */
interface AllowEntry {
  host: (h: string) => boolean;
  /** The literal host, for the private-address exception. */
  literal: string;
  port: string | undefined;
  path: string | undefined;
}

/** `host[:port][/path]`, IPv6 in brackets (`[::1]:8080/x`). */
export function parseAllowEntry(entry: string): AllowEntry {
  const slash = entry.indexOf('/', entry.startsWith('[') ? entry.indexOf(']') : 0);
  const hostport = slash === -1 ? entry : entry.slice(0, slash);
  const rawPath = slash === -1 ? undefined : entry.slice(slash).replace(/\/+$/, '');
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostport);
  const literal = (m?.[1] ?? hostport).replace(/^\[|\]$/g, '').toLowerCase();
  return {
    host: picomatch(literal, { nocase: true }),
    literal,
    port: m?.[2],
    path: rawPath === '' ? undefined : rawPath,
  };
}

const defaultPort = (url: URL) => (url.protocol === 'https:' ? '443' : '80');
const underPrefix = (path: string, prefix: string | undefined) =>
  prefix === undefined || path === prefix || path.startsWith(`${prefix}/`);

/** The allowlist as predicates over a URL and over a resolved address. */
export function httpPolicy(allowlist: string[]) {
  const entries = allowlist.map(parseAllowEntry);
  const onHost = (url: URL) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port || defaultPort(url);
    return entries.filter((e) => e.host(host) && (e.port ?? defaultPort(url)) === port);
  };
  return {
    hostAllowed(url: URL): boolean {
      return onHost(url).length > 0;
    },
    pathAllowed(url: URL): boolean {
      return onHost(url).some((e) => underPrefix(url.pathname, e.path));
    },
    addressAllowed(address: string): boolean {
      return !isPrivateAddress(address) || entries.some((e) => e.literal === address.toLowerCase());
    },
  };
}

/** Resolves like dns.lookup, then refuses private addresses at connect time, so the check is not racy. */
function guardedLookup(addressAllowed: (a: string) => boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return (callback as (e: Error) => void)(err);
      const refused = addresses.find((a) => !addressAllowed(a.address));
      if (refused || addresses.length === 0) {
        return (callback as (e: Error) => void)(
          new HttpPolicyError(`${hostname} resolves to a private address`, 'private_address'),
        );
      }
      if ((options as { all?: boolean }).all)
        return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0] as LookupAddress;
      (callback as (e: null, a: string, f: number) => void)(null, first.address, first.family);
    });
  };
}

export interface HttpGetResult {
  url: string;
  status: number;
  contentType: string;
  text: string;
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      throw new HttpResponseTooLargeError(maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The connection http.get uses: through the egress proxy when HTTP(S)_PROXY names one (the proxy
 * resolves the target and applies the same hosts, ports and private-address rule), directly to
 * NO_PROXY hosts, with the private-address guard on every direct connection.
 */
export function httpDispatcher(config: HttpConfig, env: Record<string, string | undefined> = process.env): Dispatcher {
  const policy = httpPolicy(config.HTTP_ALLOWLIST);
  return createEgressDispatcher(env, { connect: { lookup: guardedLookup(policy.addressAllowed) } });
}

/** The policy's verdict on one URL before any connection; throws the typed refusal. */
export function checkUrl(url: URL, config: HttpConfig): void {
  const policy = httpPolicy(config.HTTP_ALLOWLIST);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new HttpPolicyError(`scheme ${url.protocol} is not allowed`, 'scheme');
  if (!policy.hostAllowed(url)) throw new HttpPolicyError(`host ${url.host} is not in HTTP_ALLOWLIST`, 'host');
  if (!policy.pathAllowed(url))
    throw new HttpPolicyError(`path ${url.pathname} is under no HTTP_ALLOWLIST prefix for ${url.host}`, 'path');
  const query = url.search.length > 0 ? url.search.length - 1 : 0;
  if (query > config.HTTP_MAX_QUERY_LENGTH)
    throw new HttpPolicyError(
      `query string is ${query} characters, over HTTP_MAX_QUERY_LENGTH (${config.HTTP_MAX_QUERY_LENGTH})`,
      'query_too_long',
    );
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(literal) && !policy.addressAllowed(literal))
    throw new HttpPolicyError(`${literal} is a private address`, 'private_address');
}

/** One GET with the policy applied; follows redirects itself so each hop is checked. */
export async function policedGet(
  rawUrl: string,
  config: HttpConfig,
  signal?: AbortSignal,
  dispatcher: Dispatcher = httpDispatcher(config),
): Promise<HttpGetResult> {
  let url = new URL(rawUrl);
  for (let hop = 0; ; hop++) {
    checkUrl(url, config);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        headers: { 'user-agent': 'flotilla-researcher', accept: 'text/*, application/json;q=0.9, */*;q=0.1' },
        dispatcher,
        signal,
      });
    } catch (err) {
      // The guard's refusal arrives wrapped by the connector; surface it as the policy error it is.
      for (let e: unknown = err, i = 0; e instanceof Error && i < 4; e = e.cause, i++) {
        if (e instanceof HttpPolicyError) throw e;
      }
      // undici's ProxyAgent reports a refused CONNECT as "Proxy response (403) !== 200".
      if (err instanceof Error && /Proxy response \(403\)/.test(err.message)) {
        throw new HttpPolicyError(`the egress proxy refused ${url.host}`, 'proxy_denied', { cause: err });
      }
      throw err;
    }

    const status = res.statusCode;
    const location = res.headers.location;
    if (status >= 300 && status < 400 && location) {
      await res.body.dump();
      if (hop >= config.HTTP_MAX_REDIRECTS)
        throw new HttpPolicyError(`more than ${config.HTTP_MAX_REDIRECTS} redirects`, 'redirects');
      url = new URL(String(location), url);
      continue;
    }
    const text = await readCapped(res.body, config.HTTP_MAX_BYTES);
    return { url: url.toString(), status, contentType: String(res.headers['content-type'] ?? ''), text };
  }
}

export function httpGetTool(config: HttpConfig) {
  // One dispatcher for the tool's life: connections (and the proxy's) are pooled across calls.
  const dispatcher = httpDispatcher(config);
  return defineTool({
    name: 'http.get',
    description: 'Fetch a web page or API response over HTTP(S) from an allowlisted host; returns status and text.',
    input: z.object({ url: z.string().url().describe('Absolute http(s) URL') }),
    sideEffects: 'read',
    timeoutMs: config.HTTP_TIMEOUT_MS,
    retries: 2,
    run: ({ url }, ctx) => policedGet(url, config, ctx.signal, dispatcher),
  });
}
