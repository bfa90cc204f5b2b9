import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createProxy } from 'proxy';

/**
 * A real HTTP forward proxy on a loopback port (TooTallNate's `proxy`, the one behind the
 * proxy-agents packages), for tests of clients that must go through one. It records what each client
 * asked for and refuses targets `allow` rejects with 403, as the egress proxy does.
 */
export interface ForwardProxy {
  /** http://127.0.0.1:<port>, for HTTP_PROXY / HTTPS_PROXY. */
  url: string;
  /** Targets asked for, in order: `CONNECT host:port` for tunnels, `GET http://...` for plain requests. */
  requests: string[];
  /** The subset that was refused. */
  denied: string[];
  /** Stops listening and drops every connection. Idempotent. */
  close(): Promise<void>;
}

export async function startForwardProxy(options: { allow?: (target: string) => boolean } = {}): Promise<ForwardProxy> {
  const allow = options.allow ?? (() => true);
  const server = createProxy(createServer());
  const requests: string[] = [];
  const denied: string[] = [];
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // The library's own handlers do the proxying; ours run first and decide, as a proxy's ACL does.
  const [onConnect] = server.listeners('connect') as ((req: IncomingMessage, s: Socket, head: Buffer) => void)[];
  const [onRequest] = server.listeners('request') as ((req: IncomingMessage, res: unknown) => void)[];
  server.removeAllListeners('connect');
  server.removeAllListeners('request');
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const target = req.url ?? '';
    requests.push(`CONNECT ${target}`);
    if (allow(target)) return onConnect?.call(server, req, socket, head);
    denied.push(`CONNECT ${target}`);
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  });
  server.on('request', (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    const target = new URL(req.url ?? '/', 'http://invalid').host;
    requests.push(`${req.method} ${req.url}`);
    if (allow(target)) return onRequest?.call(server, req, res);
    denied.push(`${req.method} ${req.url}`);
    res.writeHead(403).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    denied,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
