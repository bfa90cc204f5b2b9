import { parseArgs } from 'node:util';
import { CliError, type ClientConfig } from '../client.js';
import { canaryReplicas, DEFAULT_THRESHOLDS, parseDuration, parseNumber } from '../rollout/decide.js';
import { UsageError } from './errors.js';
import { rollout } from './rollout.js';

/** Parses `flotilla rollout ...` and runs it; every bad flag is named in the error. */
export async function rolloutCommand(args: string[], api: ClientConfig): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      image: { type: 'string' },
      canary: { type: 'string', default: '10%' },
      window: { type: 'string', default: '60s' },
      'max-error-rate': { type: 'string', default: String(DEFAULT_THRESHOLDS.maxErrorRate) },
      'max-p95-ratio': { type: 'string', default: String(DEFAULT_THRESHOLDS.maxP95Ratio) },
      'min-jobs': { type: 'string', default: String(DEFAULT_THRESHOLDS.minJobs) },
      role: { type: 'string' },
      'kill-switch-on-fail': { type: 'string' },
      abort: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const [service, ...extra] = positionals;
  const usage = (message: string): never => {
    throw new UsageError(message);
  };
  if (!service || extra.length) usage('rollout needs one SERVICE (the compose service, e.g. researcher)');
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(service as string)) usage(`rollout: ${service} is not a compose service name`);
  if (!values.abort && !values.image) usage('rollout needs --image IMAGE (or --abort to remove a left canary)');
  try {
    if (!values.abort) canaryReplicas(values.canary, 1);
    return await rollout(
      {
        service: service as string,
        role: values.role,
        image: values.image,
        canary: values.canary,
        windowMs: parseDuration('window', values.window),
        thresholds: {
          maxErrorRate: parseNumber('max-error-rate', values['max-error-rate'], 0, 1),
          maxP95Ratio: parseNumber('max-p95-ratio', values['max-p95-ratio'], 1),
          minJobs: Math.round(parseNumber('min-jobs', values['min-jobs'], 1)),
        },
        killSwitchOnFail: values['kill-switch-on-fail'],
        json: Boolean(values.json),
        abort: Boolean(values.abort),
      },
      api,
    );
  } catch (err) {
    // The parsers' own messages name the flag; they are usage mistakes, not failures.
    if (err instanceof Error && !(err instanceof CliError) && err.message.startsWith('--')) usage(err.message);
    throw err;
  }
}
