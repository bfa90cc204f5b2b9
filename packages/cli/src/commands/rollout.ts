import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, type ClientConfig } from '../client.js';
import { RolloutApi } from '../rollout/api.js';
import {
  ComposeService,
  composeCommand,
  imageVariable,
  imageVersion,
  type Replica,
  rolloutEnvFile,
} from '../rollout/compose.js';
import { canaryReplicas, type Decision, decide, sideFigures, type Thresholds } from '../rollout/decide.js';
import { renderSnapshot, type Snapshot, snapshotLine } from '../rollout/view.js';
import { PLAIN, type Style, styleFor } from '../style.js';

/** Exit codes: 0 promoted (or --abort done), 3 rolled back on the figures, 4 too few jobs to decide, 130 interrupted. */
export const ROLLOUT_EXIT = { promoted: 0, rolledBack: 3, insufficient: 4, interrupted: 130 } as const;

export interface RolloutOptions {
  service: string;
  /** The role whose queue the service serves; default the service's name. */
  role?: string;
  /** The new image; not needed with `abort`. */
  image?: string;
  /** `10%` of the stable replicas (rounded up) or a count. */
  canary: string;
  windowMs: number;
  thresholds: Thresholds;
  /** A tool to turn off through the kill switch when the canary fails. */
  killSwitchOnFail?: string;
  json: boolean;
  /** Only remove what an interrupted rollout left (canary replicas), then stop. */
  abort: boolean;
}

/** How long canary or promoted replicas may take to pass their healthcheck (start_period 30 s + checks). */
const HEALTHY_WITHIN_MS = 180_000;

class Interrupted extends Error {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
  }
}

const isUp = (r: Replica) => r.running && (r.health === 'healthy' || r.health === 'none');

/**
 * `flotilla rollout`: canary replicas of a new image beside the stable ones on the same queue, their
 * figures against stable's over a window, then promotion (start-first) or rollback, by itself.
 * Stable containers are not touched before promotion; Ctrl-C or SIGTERM removes the canary; a crash
 * leaves at most canary replicas, which the next run (or --abort) removes first.
 */
export async function rollout(opts: RolloutOptions, api: ClientConfig): Promise<number> {
  const out = process.stdout;
  const style: Style = opts.json ? PLAIN : styleFor(out);
  // Under --json stdout holds the decision object alone; the story goes to stderr.
  const say = (line: string) => (opts.json ? process.stderr : out).write(`${line}\n`);
  const role = opts.role ?? opts.service;
  const svc = new ComposeService(await composeCommand(), opts.service, rolloutEnvFile());
  const client = new RolloutApi(api);

  const stableImage = await svc.stableImage();
  const leftovers = (await svc.replicas()).filter((r) => r.image !== stableImage);
  if (leftovers.length > 0) {
    say(
      `removing ${leftovers.length} replica(s) of ${opts.service} not on its image ${stableImage} (left by an interrupted rollout): ${leftovers.map((r) => `${r.name} (${r.image})`).join(', ')}`,
    );
    await svc.remove(leftovers);
  }
  const stable = (await svc.replicas()).filter((r) => r.image === stableImage && r.running);
  if (opts.abort) {
    say(`${opts.service}: ${stable.length} replica(s) of ${stableImage} serving; no canary left`);
    if (opts.json) out.write(`${JSON.stringify({ service: opts.service, stableImage, removed: leftovers.length })}\n`);
    return 0;
  }

  const image = opts.image as string;
  if (image === stableImage)
    throw new CliError(
      'flotilla:same_image',
      `${opts.service} already runs ${image}`,
      'name the new image with --image',
    );
  if (stable.length === 0)
    throw new CliError(
      'flotilla:no_stable',
      `no running ${opts.service} replicas to compare a canary with`,
      `start the stack first (docker compose up -d --scale ${opts.service}=3)`,
    );
  const canaryVersion = await imageVersion(image);
  const stableVersion = await imageVersion(stableImage).catch(() => undefined);
  if (!canaryVersion || canaryVersion === stableVersion)
    throw new CliError(
      'flotilla:version_clash',
      `${image} reports SERVICE_VERSION ${canaryVersion ?? '(none)'}${canaryVersion ? `, as ${stableImage} does` : ''}: its figures could not be told from stable's`,
      'build it with its own version (docker build --build-arg VERSION=<new>, or ENV SERVICE_VERSION=<new>)',
    );
  const canaryCount = canaryReplicas(opts.canary, stable.length);

  // Signals: the first removes the canary and ends with 130; a second one leaves at once (what it
  // left, canary replicas only, the next run or --abort removes).
  const stop = new AbortController();
  let promoting = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      process.stderr.write(
        `${signal} again: leaving now; remove what is left with flotilla rollout --abort ${opts.service}\n`,
      );
      process.exit(ROLLOUT_EXIT.interrupted);
    }
    process.stderr.write(
      promoting
        ? `${signal}: the promotion is recorded; finishing it (the old replicas are being stopped)\n`
        : `${signal}: removing the canary; ${stableImage} keeps serving\n`,
    );
    stop.abort(new Interrupted(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const checkpoint = () => {
    if (stop.signal.aborted && !promoting) throw stop.signal.reason;
  };
  const canaryReplicasNow = async () => (await svc.replicas()).filter((r) => r.image === image);

  try {
    say(
      `starting ${canaryCount} canary replica(s) of ${image} (version ${canaryVersion}) beside ${stable.length} stable replica(s) of ${stableImage}`,
    );
    await svc.scaleWith(image, stable.length + canaryCount);
    checkpoint();
    await waitUp(canaryReplicasNow, canaryCount, stop.signal, 'the canary');
    checkpoint();

    const since = Date.now();
    const snapshot = async (): Promise<Snapshot> => {
      const { versions } = await client.versions(role, since);
      const others = versions.map((v) => v.version).filter((v) => v !== canaryVersion);
      return {
        service: opts.service,
        image,
        stable: {
          ...sideFigures(versions, others.length ? others : [stableVersion ?? 'stable']),
          replicas: stable.length,
        },
        canary: { ...sideFigures(versions, [canaryVersion]), replicas: canaryCount },
        windowMs: opts.windowMs,
        elapsedMs: Math.min(opts.windowMs, Date.now() - since),
        thresholds: opts.thresholds,
      };
    };
    let last = await watchWindow(snapshot, opts, style, stop.signal);
    checkpoint();
    last = await snapshot();
    const decision = decide(last.canary, last.stable, opts.thresholds);

    if (decision.verdict === 'promote') {
      say(`canary held (${decision.reason.replace(/^promoted: /, '')}); promoting, start-first`);
      const target = Math.max(stable.length, canaryCount);
      await svc.scaleWith(image, stable.length + target);
      checkpoint();
      await waitUp(canaryReplicasNow, target, stop.signal, 'the new replicas');
      checkpoint();
      // From here the new image is the service's: a signal no longer rolls back, it waits.
      promoting = true;
      svc.persist(image);
      say(`recorded ${imageVariable(opts.service)}=${image} in ${svc.envFile}; stopping the old replicas`);
      await svc.remove((await svc.replicas()).filter((r) => r.image !== image));
      if (target > stable.length) await svc.scaleWith(image, stable.length);
      return finish(decision, 'promoted', ROLLOUT_EXIT.promoted);
    }

    await svc.remove(await canaryReplicasNow());
    let killSwitch: { tool: string; tools: string[] } | { tool: string; error: string } | undefined;
    if (decision.verdict === 'rollback' && opts.killSwitchOnFail) {
      const tool = opts.killSwitchOnFail;
      try {
        const tools = await client.stopTool(
          tool,
          `flotilla rollout: canary ${image} of ${opts.service} failed (${decision.reason})`,
        );
        killSwitch = { tool, tools };
        say(`kill switch: turned ${tool} off (tools stopped now: ${tools.join(', ')})`);
      } catch (err) {
        // The canary is already gone; the decision still gets printed, and the failure is not hidden.
        killSwitch = { tool, error: err instanceof Error ? err.message : String(err) };
        process.stderr.write(`flotilla: could not turn ${tool} off through the kill switch: ${killSwitch.error}\n`);
      }
    }
    const code = decision.verdict === 'rollback' ? ROLLOUT_EXIT.rolledBack : ROLLOUT_EXIT.insufficient;
    return finish(decision, 'rolled_back', killSwitch && 'error' in killSwitch ? 1 : code, killSwitch);
  } catch (err) {
    if (promoting) throw err;
    // Whatever went wrong before the promotion was recorded, the canary goes and stable stays.
    const left = await canaryReplicasNow().catch(() => []);
    await svc
      .remove(left)
      .catch((e: Error) =>
        process.stderr.write(
          `could not remove the canary (${e.message}); run flotilla rollout --abort ${opts.service}\n`,
        ),
      );
    // A terminal's Ctrl-C reaches Compose too, which then fails: still an interruption.
    if (err instanceof Interrupted || stop.signal.aborted) {
      say(`interrupted: canary removed (${left.length} replica(s)); ${stableImage} keeps serving`);
      return ROLLOUT_EXIT.interrupted;
    }
    say(`rollout stopped: canary removed (${left.length} replica(s)); ${stableImage} keeps serving`);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  function finish(
    decision: Decision,
    outcome: 'promoted' | 'rolled_back',
    code: number,
    killSwitch?: { tool: string; tools: string[] } | { tool: string; error: string },
  ): number {
    if (opts.json) {
      out.write(
        `${JSON.stringify(
          {
            service: opts.service,
            role,
            image,
            stableImage,
            canaryVersion,
            outcome,
            ...decision,
            ...(killSwitch && { killSwitch }),
            ...(outcome === 'promoted' && { persisted: { file: svc.envFile, variable: imageVariable(opts.service) } }),
          },
          null,
          2,
        )}\n`,
      );
    } else {
      const paint =
        decision.verdict === 'promote' ? style.green : decision.verdict === 'rollback' ? style.red : style.yellow;
      say(paint(decision.reason));
    }
    return code;
  }
}

/** Waits until `count` replicas are running and healthy; one that exits or turns unhealthy fails at once. */
async function waitUp(list: () => Promise<Replica[]>, count: number, signal: AbortSignal, what: string): Promise<void> {
  const until = Date.now() + HEALTHY_WITHIN_MS;
  for (;;) {
    const replicas = await list();
    const broken = replicas.find((r) => !r.running || r.health === 'unhealthy');
    if (broken)
      throw new CliError(
        'flotilla:canary_unhealthy',
        `${what}: ${broken.name} is ${broken.running ? 'unhealthy' : 'not running'}`,
        `see docker logs ${broken.name}`,
      );
    if (replicas.filter(isUp).length >= count) return;
    if (Date.now() > until)
      throw new CliError(
        'flotilla:canary_unhealthy',
        `${what} did not become healthy within ${HEALTHY_WITHIN_MS / 1000}s`,
      );
    if (signal.aborted) throw signal.reason;
    await sleep(1000, undefined, { signal }).catch(() => undefined);
  }
}

/**
 * Runs the window: on a terminal, redraws the live picture each second; on a pipe, a plain line every
 * five; under --json, nothing. Returns the last snapshot (the decision reads a fresh one after).
 */
async function watchWindow(
  snapshot: () => Promise<Snapshot>,
  opts: RolloutOptions,
  style: Style,
  signal: AbortSignal,
): Promise<Snapshot> {
  const tty = !opts.json && Boolean(process.stdout.isTTY);
  let drawn = 0;
  let lastLine = 0;
  for (;;) {
    const s = await snapshot();
    if (tty) {
      const lines = renderSnapshot(s, style);
      process.stdout.write(`${drawn ? `\x1b[${drawn}A\x1b[0J` : ''}${lines.join('\n')}\n`);
      drawn = lines.length;
    } else if (!opts.json && (s.elapsedMs - lastLine >= 5000 || s.elapsedMs >= s.windowMs)) {
      process.stdout.write(`${snapshotLine(s)}\n`);
      lastLine = s.elapsedMs;
    }
    if (s.elapsedMs >= s.windowMs || signal.aborted) return s;
    await sleep(Math.min(1000, s.windowMs - s.elapsedMs), undefined, { signal }).catch(() => undefined);
  }
}
