import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ForwardProxy, startForwardProxy } from '@flotilla/test-utils';
import { type Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeProxy, egressProxySettings, installEgressProxy } from './egress.js';

// Node's own global fetch (undici bundled in Node), a real forward proxy and a real target server on
// loopback: the same path the LLM clients' requests take in Compose, minus the network.
let target: Server;
let targetHost: string;
let proxy: ForwardProxy;
let before: Dispatcher;

beforeEach(async () => {
  before = getGlobalDispatcher();
  target = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${req.url}`));
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetHost = `127.0.0.1:${(target.address() as AddressInfo).port}`;
  proxy = await startForwardProxy({ allow: (t) => !t.startsWith('denied.test') && t !== 'localhost:1' });
});

afterEach(async () => {
  setGlobalDispatcher(before);
  await proxy.close();
  target.closeAllConnections();
  await new Promise<void>((resolve) => target.close(() => resolve()));
});

describe('installEgressProxy', () => {
  it("sends Node's global fetch through HTTP_PROXY", async () => {
    // Control: without the dispatcher, Node's fetch ignores HTTP_PROXY and connects directly.
    const direct = await fetch(`http://${targetHost}/direct`);
    expect(await direct.text()).toBe('hello /direct');
    expect(proxy.requests).toEqual([]);

    const installed = installEgressProxy({ HTTP_PROXY: proxy.url, NO_PROXY: 'redis,chroma' });
    expect(installed).toEqual({ httpProxy: proxy.url, httpsProxy: proxy.url, noProxy: 'redis,chroma' });
    const res = await fetch(`http://${targetHost}/via-proxy`, { method: 'POST', body: '{"a":1}' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello /via-proxy');
    // undici tunnels plain http too (CONNECT), so the proxy sees the target's host and port.
    expect(proxy.requests).toEqual([`CONNECT ${targetHost}`]);
  });

  it('connects directly to NO_PROXY hosts', async () => {
    installEgressProxy({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' });
    expect(await (await fetch(`http://${targetHost}/internal`)).text()).toBe('hello /internal');
    expect(proxy.requests).toEqual([]);
  });

  it('fails the request when the proxy refuses the target, and the target never sees it', async () => {
    installEgressProxy({ HTTP_PROXY: proxy.url });
    await expect(fetch('http://denied.test:8080/x')).rejects.toThrow(/fetch failed/);
    expect(proxy.denied).toEqual(['CONNECT denied.test:8080']);
  });

  it('installs nothing without a proxy variable', () => {
    expect(installEgressProxy({ NO_PROXY: 'redis' })).toBeUndefined();
    expect(getGlobalDispatcher()).toBe(before);
  });

  it('reads lower case first, falls back from HTTPS_PROXY to HTTP_PROXY, and never logs credentials', () => {
    expect(egressProxySettings({ http_proxy: 'http://a:3128', HTTP_PROXY: 'http://b:3128' }).httpProxy).toBe(
      'http://a:3128',
    );
    expect(egressProxySettings({ HTTP_PROXY: 'http://b:3128' }).httpsProxy).toBe('http://b:3128');
    expect(describeProxy('http://svc:s3cret@proxy:3128')).toBe('http://proxy:3128');
  });
});
