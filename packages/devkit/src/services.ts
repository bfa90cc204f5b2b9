import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/** A real backing service (for the local mesh or a test run), and how to get rid of it. */
export interface ServiceHandle {
  url: string;
  /** How it was obtained: an existing URL, a local binary, or a container. */
  source: 'env' | 'binary' | 'docker';
  stop(): Promise<void>;
  /** Kills the process without a chance to save; only for binary-backed services. */
  kill?(): Promise<void>;
  /** Starts it again on the same port and data directory, after stop or kill. */
  restart?(): Promise<void>;
}

function onPath(bin: string): string | undefined {
  if (bin.includes('/')) return bin;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, bin);
    try {
      execFileSync('test', ['-x', candidate]);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function dockerUsable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

export async function redisReachable(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function chromaReachable(url: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/api/v2/heartbeat', url), { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill(signal);
  });
}

const missing = (what: string, install: string, envVar: string) =>
  new Error(
    `${what} is needed by the local mesh (flotilla dev/demo) and the integration tests, and none was found. Either set ${envVar} to a running one, ` +
      `install it (${install}), or run a Docker engine that can pull images.`,
  );

/**
 * A service from a local binary on a free loopback port with a fresh data directory; it can be
 * killed and restarted on the same port and data (for tests of what happens when Redis goes away).
 */
async function startBinary(
  name: string,
  bin: string,
  args: (port: number, dir: string) => string[],
  url: (port: number) => string,
  ready: (url: string) => Promise<boolean>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServiceHandle> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `flotilla-${name}-`));
  const address = url(port);
  let child: ChildProcess;
  const launch = async () => {
    // Own process group: Ctrl-C in a terminal reaches the parent, which stops this in order.
    child = spawn(bin, args(port, dir), { stdio: 'ignore', detached: true, env });
    await waitFor(() => ready(address), { what: `${name} on ${port}`, timeoutMs: 60_000, intervalMs: 100 });
  };
  await launch();
  return {
    url: address,
    source: 'binary',
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
    kill: () => stopChild(child, 'SIGKILL'),
    restart: launch,
  };
}

export interface StartRedisOptions {
  /** Use a reachable REDIS_URL instead of starting one. Default true (false when `acl` is given). */
  reuse?: boolean;
  /**
   * Start a local `redis-server` with this ACL file (`--aclfile`), as Compose's redis runs, and
   * check that it is up by logging in as `username`. The handle's URL carries no credentials.
   */
  acl?: { file: string; username: string; password: string };
  /**
   * The AOF's fsync policy of a started `redis-server`: Redis's default `everysec` may lose the last
   * second of writes to a crash, `always` none (the chaos suite's Redis restart tests both). Default
   * everysec.
   */
  appendfsync?: 'always' | 'everysec';
}

/** Redis from REDIS_URL, else a local `redis-server` (appendonly, noeviction), else a container. */
export async function startRedis({
  reuse = true,
  acl,
  appendfsync = 'everysec',
}: StartRedisOptions = {}): Promise<ServiceHandle> {
  const fromEnv = process.env.REDIS_URL;
  if (reuse && !acl && fromEnv && (await redisReachable(fromEnv))) {
    return { url: fromEnv, source: 'env', stop: async () => {} };
  }
  const bin = onPath(process.env.REDIS_SERVER_BIN ?? 'redis-server');
  if (bin) {
    const login = acl && `${encodeURIComponent(acl.username)}:${encodeURIComponent(acl.password)}@`;
    return startBinary(
      'redis',
      bin,
      (port, dir) => [
        ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
        ...['--appendonly', 'yes', '--appendfsync', appendfsync, '--maxmemory-policy', 'noeviction', '--save', ''],
        ...(acl ? ['--aclfile', acl.file] : []),
      ],
      (port) => `redis://127.0.0.1:${port}`,
      (url) => redisReachable(login ? url.replace('redis://', `redis://${login}`) : url),
    );
  }
  if (acl)
    throw missing('redis-server (for a Redis with an ACL file)', 'apt-get install redis-server', 'REDIS_SERVER_BIN');
  if (dockerUsable())
    return startContainer('redis:7.0.15-bookworm', 6379, (u) => redisReachable(u.replace('http', 'redis')), 'redis');
  throw missing('Redis', 'apt-get install redis-server', 'REDIS_URL');
}

/** Chroma from CHROMA_URL, else `chroma run` from the chromadb Python package, else a container. */
export async function startChroma({ reuse = true }: { reuse?: boolean } = {}): Promise<ServiceHandle> {
  const fromEnv = process.env.CHROMA_URL;
  if (reuse && fromEnv && (await chromaReachable(fromEnv))) {
    return { url: fromEnv, source: 'env', stop: async () => {} };
  }
  const bin = onPath(process.env.CHROMA_BIN ?? 'chroma');
  if (bin) {
    return startBinary(
      'chroma',
      bin,
      (port, dir) => ['run', '--host', '127.0.0.1', '--port', String(port), '--path', dir],
      (port) => `http://127.0.0.1:${port}`,
      chromaReachable,
      { ...process.env, ANONYMIZED_TELEMETRY: 'False' },
    );
  }
  if (dockerUsable()) return startContainer('chromadb/chroma:1.5.9', 8000, chromaReachable, 'chroma');
  throw missing(
    'Chroma',
    'python3 -m venv v && v/bin/pip install chromadb, then put v/bin on PATH or set CHROMA_BIN',
    'CHROMA_URL',
  );
}

async function startContainer(
  image: string,
  containerPort: number,
  ready: (url: string) => Promise<boolean>,
  scheme: string,
): Promise<ServiceHandle> {
  const id = execFileSync('docker', ['run', '-d', '--rm', '-p', `127.0.0.1::${containerPort}`, image], {
    encoding: 'utf8',
  }).trim();
  const mapped = execFileSync('docker', ['port', id, String(containerPort)], { encoding: 'utf8' }).split('\n')[0] ?? '';
  const port = mapped.slice(mapped.lastIndexOf(':') + 1);
  const url = scheme === 'redis' ? `redis://127.0.0.1:${port}` : `http://127.0.0.1:${port}`;
  await waitFor(() => ready(url), { what: `${image} container`, timeoutMs: 60_000, intervalMs: 200 });
  return {
    url,
    source: 'docker',
    stop: async () => {
      execFileSync('docker', ['rm', '-f', id], { stdio: 'ignore' });
    },
  };
}
