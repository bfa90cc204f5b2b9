import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startForwardProxy } from '@flotilla/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type HttpConfig,
  HttpPolicyError,
  HttpResponseTooLargeError,
  httpDispatcher,
  httpPolicy,
  isPrivateAddress,
  policedGet,
} from './http-get.js';

let server: Server;
let base: string;
let port: number;

beforeEach(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/page' || url.pathname.startsWith('/docs'))
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    if (url.pathname === '/big') return void res.writeHead(200).end('x'.repeat(5000));
    if (url.pathname === '/to-page') return void res.writeHead(302, { location: '/page' }).end();
    if (url.pathname === '/to-elsewhere')
      return void res.writeHead(302, { location: 'http://not-allowed.test/x' }).end();
    if (url.pathname === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const config = (allowlist: string[], extra: Partial<HttpConfig> = {}): HttpConfig => ({
  HTTP_ALLOWLIST: allowlist,
  HTTP_MAX_BYTES: 1000,
  HTTP_MAX_REDIRECTS: 3,
  HTTP_MAX_QUERY_LENGTH: 64,
  HTTP_TIMEOUT_MS: 5000,
  ...extra,
});

describe('http.get policy', () => {
  it('fetches an allowlisted host and follows an allowed redirect', async () => {
    const page = await policedGet(`${base}/to-page`, config([`127.0.0.1:${port}`]));
    expect(page).toMatchObject({ status: 200, text: 'hello', url: `${base}/page` });
  });

  it('refuses a host off the allowlist without connecting', async () => {
    await expect(policedGet(`${base}/page`, config([]))).rejects.toThrow(HttpPolicyError);
    await expect(policedGet(`${base}/page`, config(['example.com']))).rejects.toThrow(/not in HTTP_ALLOWLIST/);
  });

  it('re-checks every redirect against the allowlist', async () => {
    await expect(policedGet(`${base}/to-elsewhere`, config([`127.0.0.1:${port}`]))).rejects.toThrow(
      /not-allowed\.test/,
    );
  });

  it('stops redirect loops at the bound', async () => {
    await expect(policedGet(`${base}/loop`, config([`127.0.0.1:${port}`]))).rejects.toThrow(/more than 3 redirects/);
  });

  it('refuses a name that resolves to a loopback address unless the address itself is listed', async () => {
    // localhost matches the name glob, but resolves to 127.0.0.1, which is not listed: DNS rebinding stops here.
    await expect(policedGet(`http://localhost:${port}/page`, config([`localhost:${port}`]))).rejects.toThrow(
      /private address/,
    );
    const ok = await policedGet(`http://localhost:${port}/page`, config([`localhost:${port}`, '127.0.0.1', '::1']));
    expect(ok.text).toBe('hello');
  });

  it('refuses private and loopback literals unless listed', async () => {
    await expect(policedGet(`${base}/page`, config([`127.0.0.*:${port}`]))).rejects.toThrow(/private address/);
    expect(isPrivateAddress('10.1.2.3')).toBe(true);
    expect(isPrivateAddress('::ffff:192.168.1.1')).toBe(true);
    expect(isPrivateAddress('fe80::1')).toBe(true);
    expect(isPrivateAddress('93.184.216.34')).toBe(false);
  });

  it('caps the response size', async () => {
    await expect(policedGet(`${base}/big`, config([`127.0.0.1:${port}`]))).rejects.toThrow(HttpResponseTooLargeError);
  });

  it('refuses schemes other than http and https', async () => {
    await expect(policedGet('file:///etc/passwd', config(['*']))).rejects.toThrow(/scheme file:/);
  });

  it('aborts with the run when its signal fires', async () => {
    const controller = new AbortController();
    controller.abort(new Error('deadline'));
    await expect(policedGet(`${base}/page`, config([`127.0.0.1:${port}`]), controller.signal)).rejects.toThrow();
  });

  it('matches host:port entries', () => {
    const p = httpPolicy([`127.0.0.1:${port}`]);
    expect(p.hostAllowed(new URL(`${base}/x`))).toBe(true);
    expect(p.hostAllowed(new URL('http://127.0.0.1:1/x'))).toBe(false);
  });

  it('matches host:port entries, and an entry without a port allows only the default port', () => {
    expect(httpPolicy(['example.com']).hostAllowed(new URL('http://example.com/x'))).toBe(true);
    expect(httpPolicy(['example.com']).hostAllowed(new URL('https://example.com/x'))).toBe(true);
    expect(httpPolicy(['example.com']).hostAllowed(new URL('http://example.com:6379/x'))).toBe(false);
    expect(httpPolicy(['example.com:8443']).hostAllowed(new URL('https://example.com:8443/'))).toBe(true);
    expect(httpPolicy(['example.com:8443']).hostAllowed(new URL('https://example.com/'))).toBe(false);
    expect(httpPolicy(['*.example.com']).hostAllowed(new URL('https://a.b.example.com/'))).toBe(true);
  });

  it("refuses a URL outside the entry's path prefix, by whole segments, with a typed error", async () => {
    const cfg = config([`127.0.0.1:${port}/docs/api`]);
    const ok = await policedGet(`${base}/docs/api/v1`, cfg);
    expect(ok.text).toBe('hello');
    for (const path of ['/page', '/docs/apix', '/docs', '/docs/api/../../page']) {
      const err = await policedGet(`${base}${path}`, cfg).catch((e: unknown) => e);
      expect(err, path).toBeInstanceOf(HttpPolicyError);
      expect((err as HttpPolicyError).reason, path).toBe('path');
      expect((err as HttpPolicyError).code).toBe('FLOTILLA_HTTP_POLICY');
    }
    // A trailing slash on the prefix means the same prefix.
    expect(httpPolicy([`127.0.0.1:${port}/docs`]).pathAllowed(new URL(`${base}/docs/x`))).toBe(true);
    expect(httpPolicy([`127.0.0.1:${port}/docs/`]).pathAllowed(new URL(`${base}/docs/x`))).toBe(true);
  });

  it('refuses a query string longer than HTTP_MAX_QUERY_LENGTH', async () => {
    const cfg = config([`127.0.0.1:${port}`]);
    expect((await policedGet(`${base}/page?q=${'a'.repeat(62)}`, cfg)).text).toBe('hello');
    const err = await policedGet(`${base}/page?q=${'a'.repeat(63)}`, cfg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpPolicyError);
    expect((err as HttpPolicyError).reason).toBe('query_too_long');
    expect((err as Error).message).toMatch(/65 characters, over HTTP_MAX_QUERY_LENGTH \(64\)/);
  });
});

describe('http.get through the egress proxy', () => {
  it('goes through HTTP_PROXY when one is set, and the proxy sees the target', async () => {
    const proxy = await startForwardProxy();
    try {
      const cfg = config([`127.0.0.1:${port}`]);
      const page = await policedGet(`${base}/page`, cfg, undefined, httpDispatcher(cfg, { HTTP_PROXY: proxy.url }));
      expect(page.text).toBe('hello');
      expect(proxy.requests).toEqual([`CONNECT 127.0.0.1:${port}`]);
    } finally {
      await proxy.close();
    }
  });

  it("turns the proxy's 403 into a typed, non-retryable refusal", async () => {
    const proxy = await startForwardProxy({ allow: () => false });
    try {
      const cfg = config([`127.0.0.1:${port}`]);
      const err = await policedGet(
        `${base}/page`,
        cfg,
        undefined,
        httpDispatcher(cfg, { HTTP_PROXY: proxy.url }),
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HttpPolicyError);
      expect((err as HttpPolicyError).reason).toBe('proxy_denied');
      expect((err as HttpPolicyError).retryable).toBe(false);
      expect(proxy.denied).toEqual([`CONNECT 127.0.0.1:${port}`]);
    } finally {
      await proxy.close();
    }
  });

  it('connects directly to NO_PROXY hosts, still under the private-address guard', async () => {
    const proxy = await startForwardProxy();
    try {
      const env = { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' };
      const listed = config([`127.0.0.1:${port}`]);
      expect((await policedGet(`${base}/page`, listed, undefined, httpDispatcher(listed, env))).text).toBe('hello');
      const byName = config([`localhost:${port}`]);
      await expect(
        policedGet(`http://localhost:${port}/page`, byName, undefined, httpDispatcher(byName, env)),
      ).rejects.toThrow(/private address/);
      expect(proxy.requests).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});
