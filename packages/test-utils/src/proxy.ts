import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { freePort } from '@flotilla/devkit';

/** How the proxy treats a client: pass bytes on, hold them (a hung peer), or refuse to connect (a peer that is down). */
export type ProxyMode = 'forward' | 'hold' | 'refuse';

/**
 * A TCP hop between a service and a real dependency, for outages a test can start and end: the
 * dependency itself keeps running and is what answers once the proxy forwards again.
 */
export interface TcpProxy {
  /** The target URL with the proxy's host and port, e.g. http://127.0.0.1:40123. */
  url: string;
  port: number;
  /** Switches mode. `forward` passes on what held clients sent; `refuse` drops every open connection. */
  set(mode: ProxyMode): Promise<void>;
  /** Stops listening and drops every connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a proxy on a free loopback port in front of `target` (a URL; only its host and port are
 * used). In `refuse` mode nothing listens on the port, so clients get ECONNREFUSED as from a
 * stopped server; in `hold` mode connections are accepted and nothing comes back.
 */
export async function startTcpProxy(target: string, mode: ProxyMode = 'forward'): Promise<TcpProxy> {
  const to = new URL(target);
  const targetPort = Number(to.port || (to.protocol === 'https:' ? 443 : 80));
  const port = await freePort();
  const sockets = new Set<Socket>();
  const held: Socket[] = [];
  let current: ProxyMode = mode;
  let listening = false;

  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const pipe = (client: Socket) => {
    const upstream = tcpConnect(targetPort, to.hostname);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const server = createServer((client) => {
    track(client);
    if (current === 'forward') pipe(client);
    else {
      // Bytes the client sends wait in its socket until the proxy forwards (or drops) them.
      client.pause();
      held.push(client);
    }
  });

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        listening = true;
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      held.length = 0;
    });

  const set = async (next: ProxyMode) => {
    current = next;
    if (next === 'refuse') return unlisten();
    if (!listening) await listen();
    if (next === 'forward') for (const client of held.splice(0)) if (!client.destroyed) pipe(client);
  };
  await set(mode);

  let closing: Promise<void> | undefined;
  return {
    url: `${to.protocol}//127.0.0.1:${port}`,
    port,
    set,
    close: () => {
      closing ??= unlisten();
      return closing;
    },
  };
}
