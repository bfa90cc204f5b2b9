import { execFile } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CliError } from '../client.js';

const run = promisify(execFile);

/** How long a replica may drain before Docker kills it: compose.yaml's stop_grace_period. */
export const STOP_GRACE_S = 35;

/** One container of the service, as `compose ps` and `docker inspect` tell it. */
export interface Replica {
  id: string;
  name: string;
  image: string;
  running: boolean;
  /** 'healthy', 'unhealthy', 'starting', or 'none' without a healthcheck. */
  health: string;
}

/**
 * The env variable that overrides a service's image in compose.yaml
 * (`image: ${RESEARCHER_IMAGE:-flotilla/researcher:${FLOTILLA_VERSION:-dev}}`).
 */
export const imageVariable = (service: string) => `${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_IMAGE`;

/**
 * The Compose command: FLOTILLA_COMPOSE, else the `docker compose` plugin when it answers, else
 * Compose v2 from PyPI where scripts/test-stack installs it. Compose v2 only: the rollout reads
 * `ps --format json` and relies on `--no-recreate` keeping the stable containers as they are.
 */
export async function composeCommand(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  if (env.FLOTILLA_COMPOSE) return env.FLOTILLA_COMPOSE.split(' ').filter(Boolean);
  try {
    await run('docker', ['compose', 'version'], { timeout: 15_000 });
    return ['docker', 'compose'];
  } catch {
    const venv = join(
      env.FLOTILLA_CACHE || join(homedir(), '.cache', 'flotilla'),
      'venv-compose',
      'bin',
      'docker-compose',
    );
    if (existsSync(venv)) return [venv];
  }
  throw new CliError(
    'flotilla:no_compose',
    'no Compose v2 found (neither `docker compose` nor FLOTILLA_COMPOSE)',
    'install the Compose plugin, or set FLOTILLA_COMPOSE to a Compose v2 command (pnpm test:stack installs one: ~/.cache/flotilla/venv-compose/bin/docker-compose)',
  );
}

/** KEY=VALUE lines of an env file (Compose's .env syntax, without interpolation); {} when missing. */
export function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1] as string] = (m[2] as string).replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * Sets KEY=value in an env file, keeping every other line (comments too); written to a temporary
 * file and renamed, so a crash leaves the old file or the new one, never half of one.
 */
export function writeEnvValue(path: string, key: string, value: string): void {
  const lines = existsSync(path) ? readFileSync(path, 'utf8').replace(/\n$/, '').split('\n') : [];
  const at = lines.findIndex((l) => new RegExp(`^\\s*${key}\\s*=`).test(l));
  const line = `${key}=${value}`;
  if (at >= 0) lines[at] = line;
  else
    lines.push(`# Set by \`flotilla rollout\` when it promoted this image (packages/cli/README.md, "rollout").`, line);
  const tmp = `${path}.flotilla-tmp`;
  writeFileSync(tmp, `${lines.join('\n')}\n`);
  renameSync(tmp, path);
}

/**
 * One Compose service as the rollout drives it. Stable and canary replicas are containers of the same
 * service told apart by image: `up --no-recreate --scale` adds containers on the new image and leaves
 * the running ones exactly as they are, so until promotion the stable replicas are never touched.
 */
export class ComposeService {
  constructor(
    readonly cmd: string[],
    readonly service: string,
    /** Where the promoted image is recorded: the .env Compose reads (FLOTILLA_ROLLOUT_ENV_FILE). */
    readonly envFile: string,
    private readonly baseEnv: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Compose's own precedence: the shell's variables over the env file's. */
  private env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...readEnvFile(this.envFile), ...this.baseEnv, ...extra };
  }

  private async compose(args: string[], extra?: Record<string, string>, timeoutMs = 300_000): Promise<string> {
    const [bin, ...pre] = this.cmd as [string, ...string[]];
    try {
      const { stdout } = await run(bin, [...pre, ...args], {
        env: this.env(extra),
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new CliError(
        'flotilla:compose',
        `${this.cmd.join(' ')} ${args.join(' ')} failed: ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' / ')}`,
        'check the stack with `docker compose ps`; COMPOSE_FILE and COMPOSE_PROJECT_NAME come from ./.env or the environment',
      );
    }
  }

  /** The image the service runs when nobody overrides it: what `compose config` resolves. */
  async stableImage(): Promise<string> {
    const config = JSON.parse(await this.compose(['config', '--format', 'json'])) as {
      services?: Record<string, { image?: string }>;
    };
    const svc = config.services?.[this.service];
    if (!svc)
      throw new CliError(
        'flotilla:no_service',
        `no service ${this.service} in the Compose project`,
        `name a worker service of compose/compose.yaml (e.g. researcher)`,
      );
    if (!svc.image) throw new CliError('flotilla:no_image', `service ${this.service} names no image`);
    return svc.image;
  }

  /** The service's containers, with their image and health. */
  async replicas(): Promise<Replica[]> {
    const out = (await this.compose(['ps', '-a', '--format', 'json', this.service])).trim();
    if (!out) return [];
    // Compose prints one JSON object per line (v2.21+) or one array (older v2).
    const rows = (out.startsWith('[') ? JSON.parse(out) : out.split('\n').map((l) => JSON.parse(l))) as {
      ID: string;
      Name: string;
      Image: string;
      State: string;
      Health?: string;
      Service?: string;
    }[];
    return rows
      .filter((r) => !r.Service || r.Service === this.service)
      .map((r) => ({
        id: r.ID,
        name: r.Name,
        image: r.Image,
        running: r.State === 'running',
        health: r.Health || 'none',
      }));
  }

  /**
   * Adds containers on `image` until the service has `total`, without recreating or restarting the
   * ones it has (--no-recreate) or touching other services (--no-deps).
   */
  async scaleWith(image: string, total: number): Promise<void> {
    await this.compose(
      ['up', '-d', '--no-deps', '--no-recreate', '--scale', `${this.service}=${total}`, this.service],
      {
        [imageVariable(this.service)]: image,
      },
    );
  }

  /** Stops containers gracefully (SIGTERM: the worker drains, its jobs finish or go back), then removes them. */
  async remove(replicas: readonly Replica[]): Promise<void> {
    if (replicas.length === 0) return;
    const ids = replicas.map((r) => r.id);
    await docker(['stop', '--time', String(STOP_GRACE_S), ...ids], (STOP_GRACE_S + 30) * 1000);
    await docker(['rm', '-f', ...ids]);
  }

  /** Records the promoted image where `docker compose up` reads it next time. */
  persist(image: string): void {
    writeEnvValue(this.envFile, imageVariable(this.service), image);
  }
}

async function docker(args: string[], timeoutMs = 60_000): Promise<string> {
  try {
    return (await run('docker', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CliError('flotilla:docker', `docker ${args[0]} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/**
 * The SERVICE_VERSION an image's replicas report (its ENV, set from the build's VERSION): how the
 * figures tell its attempts apart. Undefined when the image sets none.
 */
export async function imageVersion(image: string): Promise<string | undefined> {
  let out: string;
  try {
    out = await docker(['image', 'inspect', '--format', '{{json .Config.Env}}', image]);
  } catch {
    throw new CliError(
      'flotilla:no_such_image',
      `no image ${image} on this Docker engine`,
      'build or pull it first (docker compose build, or docker pull)',
    );
  }
  const env = (JSON.parse(out) as string[] | null) ?? [];
  return env.find((e) => e.startsWith('SERVICE_VERSION='))?.slice('SERVICE_VERSION='.length) || undefined;
}

/** FLOTILLA_ROLLOUT_ENV_FILE, else ./.env: the file `docker compose` run from the repo root reads. */
export const rolloutEnvFile = (env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()) =>
  resolve(cwd, env.FLOTILLA_ROLLOUT_ENV_FILE || '.env');
