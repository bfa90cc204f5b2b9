import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from '@flotilla/devkit';

const run = promisify(execFile);

export interface RedisCluster {
  /** host:port of every master, comma-separated: what REDIS_CLUSTER_NODES takes. */
  nodes: string;
  ports: number[];
  /** Kills every node and removes their directories. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Masters (no replicas). Default 3, the fewest `redis-cli --cluster create` accepts. */
  masters?: number;
  /** An ACL user every node has (and the default user switched off), as a managed cluster would. */
  user?: { name: string; password: string };
}

const exitedEarly = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/**
 * A real Redis Cluster on loopback from the local `redis-server` and `redis-cli` binaries: a node per
 * master on a free port with its own directory, joined by `redis-cli --cluster create`, returned once
 * every node reports cluster_state:ok. Fails (never skips) when the binaries are missing.
 */
export async function startRedisCluster({ masters = 3, user }: RedisClusterOptions = {}): Promise<RedisCluster> {
  for (const bin of ['redis-server', 'redis-cli']) {
    try {
      await run(bin, ['--version']);
    } catch {
      throw new Error(
        `${bin} is needed to start a Redis Cluster for this test and was not found on PATH (apt-get install redis-server redis-tools)`,
      );
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const auth = user ? ['--user', user.name, '--pass', user.password, '--no-auth-warning'] : [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (exitedEarly(child)) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      // The bus port defaults to port + 10000, which a free port near the top of the range overflows.
      const bus = await freePort();
      ports.push(port);
      const args = [
        ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
        ...['--cluster-enabled', 'yes', '--cluster-port', String(bus)],
        ...['--cluster-config-file', join(dir, `nodes-${port}.conf`)],
        ...['--save', '', '--appendonly', 'no'],
        ...(user
          ? ['--user', user.name, 'on', `>${user.password}`, '~*', '&*', '+@all', '--user', 'default', 'off']
          : []),
      ];
      children.push(spawn('redis-server', args, { stdio: 'ignore' }));
    }
    const cli = (port: number, ...args: string[]) =>
      run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { encoding: 'utf8' });
    const up = async (port: number) => (await cli(port, 'PING').catch(() => ({ stdout: '' }))).stdout.trim() === 'PONG';
    for (const port of ports) {
      await waitFor(
        async () => {
          if (children.some(exitedEarly)) throw new Error('a redis-server of the cluster exited at start');
          return up(port);
        },
        { what: `redis-server on ${port}`, timeoutMs: 10_000, intervalMs: 50 },
      );
    }
    await run(
      'redis-cli',
      [
        ...auth,
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8' },
    );
    for (const port of ports) {
      await waitFor(async () => (await cli(port, 'CLUSTER', 'INFO')).stdout.includes('cluster_state:ok'), {
        what: `cluster_state:ok on ${port}`,
        timeoutMs: 15_000,
        intervalMs: 100,
      });
    }
    return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
