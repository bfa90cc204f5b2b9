import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { defineTool, FlotillaError } from '@flotilla/runtime';
import picomatch from 'picomatch';
import { z } from 'zod';

/** What http.get reads from the environment. */
export const httpConfigSchema = z.object({
  /**
   * Hosts the researcher may fetch, as globs over `host` or `host:port` (e.g. `*.wikipedia.org,docs.example.com`).
   * Empty (the default) allows none. Private and loopback addresses are refused even for an allowed
   * name unless the address itself is listed (e.g. `127.0.0.1`), which stops DNS rebinding.
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
  /** Per-attempt timeout; the tool gateway enforces it. */
  HTTP_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
});
export type HttpConfig = z.output<typeof httpConfigSchema>;

/** A request the policy refuses. Not retryable: asking again gets the same answer. */
export class HttpPolicyError extends FlotillaError {
  readonly retryable = false;
  readonly stopReason = 'policy_denied' as const;
  constructor(message: string) {
    super('FLOTILLA_HTTP_POLICY', message);
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

/** The allowlist as predicates over a URL and over a resolved address. */
export function httpPolicy(allowlist: string[]) {
  const match = picomatch(allowlist.length ? allowlist : ['\0none'], { nocase: true });
  return {
    hostAllowed(url: URL): boolean {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      return match(host) || (url.port !== '' && match(`${host}:${url.port}`));
    },
    addressAllowed(address: string): boolean {
      return !isPrivateAddress(address) || allowlist.includes(address);
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
        return (callback as (e: Error) => void)(new HttpPolicyError(`${hostname} resolves to a private address`));
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

async function readCapped(res: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      res.destroy();
      throw new HttpResponseTooLargeError(maxBytes);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One GET with the policy applied; follows redirects itself so each hop is checked. */
export async function policedGet(rawUrl: string, config: HttpConfig, signal?: AbortSignal): Promise<HttpGetResult> {
  const policy = httpPolicy(config.HTTP_ALLOWLIST);
  let url = new URL(rawUrl);
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new HttpPolicyError(`scheme ${url.protocol} is not allowed`);
    if (!policy.hostAllowed(url)) throw new HttpPolicyError(`host ${url.host} is not in HTTP_ALLOWLIST`);
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) && !policy.addressAllowed(literal)) throw new HttpPolicyError(`${literal} is a private address`);

    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, {
        method: 'GET',
        headers: { 'user-agent': 'flotilla-researcher', accept: 'text/*, application/json;q=0.9, */*;q=0.1' },
        lookup: guardedLookup(policy.addressAllowed),
        signal,
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });

    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= config.HTTP_MAX_REDIRECTS)
        throw new HttpPolicyError(`more than ${config.HTTP_MAX_REDIRECTS} redirects`);
      url = new URL(res.headers.location, url);
      continue;
    }
    const text = await readCapped(res, config.HTTP_MAX_BYTES);
    return { url: url.toString(), status, contentType: String(res.headers['content-type'] ?? ''), text };
  }
}

export function httpGetTool(config: HttpConfig) {
  return defineTool({
    name: 'http.get',
    description: 'Fetch a web page or API response over HTTP(S) from an allowlisted host; returns status and text.',
    input: z.object({ url: z.string().url().describe('Absolute http(s) URL') }),
    sideEffects: 'read',
    timeoutMs: config.HTTP_TIMEOUT_MS,
    retries: 2,
    run: ({ url }, ctx) => policedGet(url, config, ctx.signal),
  });
}
