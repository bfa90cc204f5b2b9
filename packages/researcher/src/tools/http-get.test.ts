import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type HttpConfig,
  HttpPolicyError,
  HttpResponseTooLargeError,
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
    if (url.pathname === '/page') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
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
  HTTP_TIMEOUT_MS: 5000,
  ...extra,
});

describe('http.get policy', () => {
  it('fetches an allowlisted host and follows an allowed redirect', async () => {
    const page = await policedGet(`${base}/to-page`, config(['127.0.0.1']));
    expect(page).toMatchObject({ status: 200, text: 'hello', url: `${base}/page` });
  });

  it('refuses a host off the allowlist without connecting', async () => {
    await expect(policedGet(`${base}/page`, config([]))).rejects.toThrow(HttpPolicyError);
    await expect(policedGet(`${base}/page`, config(['example.com']))).rejects.toThrow(/not in HTTP_ALLOWLIST/);
  });

  it('re-checks every redirect against the allowlist', async () => {
    await expect(policedGet(`${base}/to-elsewhere`, config(['127.0.0.1']))).rejects.toThrow(/not-allowed\.test/);
  });

  it('stops redirect loops at the bound', async () => {
    await expect(policedGet(`${base}/loop`, config(['127.0.0.1']))).rejects.toThrow(/more than 3 redirects/);
  });

  it('refuses a name that resolves to a loopback address unless the address itself is listed', async () => {
    // localhost matches the name glob, but resolves to 127.0.0.1, which is not listed: DNS rebinding stops here.
    await expect(policedGet(`http://localhost:${port}/page`, config(['localhost']))).rejects.toThrow(/private address/);
    const ok = await policedGet(`http://localhost:${port}/page`, config(['localhost', '127.0.0.1', '::1']));
    expect(ok.text).toBe('hello');
  });

  it('refuses private and loopback literals unless listed', async () => {
    await expect(policedGet(`${base}/page`, config(['127.0.0.*']))).rejects.toThrow(/private address/);
    expect(isPrivateAddress('10.1.2.3')).toBe(true);
    expect(isPrivateAddress('::ffff:192.168.1.1')).toBe(true);
    expect(isPrivateAddress('fe80::1')).toBe(true);
    expect(isPrivateAddress('93.184.216.34')).toBe(false);
  });

  it('caps the response size', async () => {
    await expect(policedGet(`${base}/big`, config(['127.0.0.1']))).rejects.toThrow(HttpResponseTooLargeError);
  });

  it('refuses schemes other than http and https', async () => {
    await expect(policedGet('file:///etc/passwd', config(['*']))).rejects.toThrow(/scheme file:/);
  });

  it('aborts with the run when its signal fires', async () => {
    const controller = new AbortController();
    controller.abort(new Error('deadline'));
    await expect(policedGet(`${base}/page`, config(['127.0.0.1']), controller.signal)).rejects.toThrow();
  });

  it('matches host:port entries', () => {
    const p = httpPolicy([`127.0.0.1:${port}`]);
    expect(p.hostAllowed(new URL(`${base}/x`))).toBe(true);
    expect(p.hostAllowed(new URL('http://127.0.0.1:1/x'))).toBe(false);
  });
});
