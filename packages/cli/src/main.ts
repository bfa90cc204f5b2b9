#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ApiClient, CliError, resolveConfig } from './client.js';
import { commandContext } from './commands/io.js';
import { RolloutUsageError, rolloutCommand } from './commands/rollout-args.js';
import { submit } from './commands/submit.js';
import { cancelTask, listTasks, showTask } from './commands/tasks.js';
import { demo, dev } from './demo.js';
import { addKey, defaultKeysFile, listKeys, revokeKey } from './keys.js';
import { newWorker, repoRoot } from './scaffold.js';

class UsageError extends Error {}

const usage = `usage: flotilla <command>
  demo [--goal TEXT]     run the mesh locally, submit one goal, print progress and the answer
  dev                    run the mesh locally on :8080 until Ctrl-C
  new-worker NAME [--description TEXT] [--no-install]
                         scaffold packages/NAME as a new worker role, add its compose service, pnpm install
  keys add NAME [--admin] [--file PATH]
                         add an API key (tenant NAME; --admin: the operator's endpoints instead of tasks);
                         prints the key once, stores only its hash (default file: $API_KEYS_FILE,
                         else compose/secrets/api_keys)
  keys revoke NAME [--file PATH]
                         remove NAME's key; requests with it get 401 within API_KEYS_RELOAD_MS
  keys list [--file PATH]
                         the clients and their scopes

tasks (against the API at $FLOTILLA_URL, default http://127.0.0.1:8080; key from $FLOTILLA_API_KEY,
else the file $FLOTILLA_API_KEY_FILE, else ./.flotilla-key; none needed by pnpm dev's mesh):
  submit GOAL [--watch] [--max-steps N] [--max-tool-calls N] [--max-seconds N] [--max-tokens N]
         [--idempotency-key K] [--json]
                         start a task and print its id (--json: the accepted body); --watch follows it
                         live and prints the answer, exiting 0 completed, 3 failed, 4 cancelled,
                         5 completed but partial (1: the CLI could not do it, 2: a usage mistake)
  tasks [--status S]... [--limit N] [--json]
                         your tasks, newest first (default 20)
  status ID [--json]     one task: its subtasks, their usage, the answer
  cancel ID [--json]     cancel an unfinished task

operating (an admin key; Docker Compose v2 for the containers):
  rollout SERVICE --image IMAGE [--canary 10%|N] [--window 60s] [--max-error-rate 0.05]
          [--max-p95-ratio 1.5] [--min-jobs 20] [--role ROLE] [--kill-switch-on-fail TOOL] [--json]
                         canary replicas of IMAGE beside the stable ones, compared over the window, then
                         promoted or rolled back by itself; exits 0 promoted, 3 rolled back, 4 too few jobs
                         to decide (rolled back), 130 interrupted (canary removed)
  rollout SERVICE --abort
                         remove canary replicas an interrupted rollout left; stable keeps serving

--json prints the API's body and nothing else; colours only on a terminal (NO_COLOR turns them off).`;

/** A positive number option (the budget's), or a usage error naming it. */
function positive(name: string, value: string | undefined, integer = true): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} needs a positive ${integer ? 'integer' : 'number'}, not "${value}"`);
  return n;
}

const client = () => new ApiClient(resolveConfig());

const [command, ...rest] = process.argv.slice(2);
try {
  switch (command) {
    case 'demo': {
      const { values } = parseArgs({ args: rest, options: { goal: { type: 'string' } } });
      process.exitCode = await demo(values.goal);
      break;
    }
    case 'dev':
      await dev();
      break;
    case 'submit': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          watch: { type: 'boolean', short: 'w' },
          json: { type: 'boolean' },
          'max-steps': { type: 'string' },
          'max-tool-calls': { type: 'string' },
          'max-seconds': { type: 'string' },
          'max-tokens': { type: 'string' },
          'idempotency-key': { type: 'string' },
        },
      });
      const goal = positionals.join(' ').trim();
      if (!goal) throw new UsageError('submit needs a GOAL (quote it: flotilla submit "find out ...")');
      const budget = Object.fromEntries(
        Object.entries({
          maxSteps: positive('max-steps', values['max-steps']),
          maxToolCalls: positive('max-tool-calls', values['max-tool-calls']),
          maxSeconds: positive('max-seconds', values['max-seconds'], false),
          maxTokens: positive('max-tokens', values['max-tokens']),
        }).filter(([, v]) => v !== undefined),
      );
      process.exitCode = await submit(commandContext(client(), Boolean(values.json)), goal, {
        watch: values.watch,
        idempotencyKey: values['idempotency-key'],
        ...(Object.keys(budget).length > 0 && { budget }),
      });
      break;
    }
    case 'tasks': {
      const { values } = parseArgs({
        args: rest,
        options: {
          json: { type: 'boolean' },
          status: { type: 'string', multiple: true },
          limit: { type: 'string' },
        },
      });
      process.exitCode = await listTasks(commandContext(client(), Boolean(values.json)), {
        status: values.status,
        limit: positive('limit', values.limit),
      });
      break;
    }
    case 'status':
    case 'cancel': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: 'boolean' } },
      });
      const id = positionals[0];
      if (!id || positionals.length > 1) throw new UsageError(`${command} needs one task ID`);
      const ctx = commandContext(client(), Boolean(values.json));
      process.exitCode = command === 'status' ? await showTask(ctx, id) : await cancelTask(ctx, id);
      break;
    }
    case 'rollout':
      process.exitCode = await rolloutCommand(rest, resolveConfig());
      break;
    case 'new-worker': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { description: { type: 'string' }, 'no-install': { type: 'boolean' } },
      });
      const name = positionals[0];
      if (!name) throw new UsageError('new-worker needs a NAME');
      for (const line of await newWorker(name, { description: values.description })) console.log(line);
      if (!values['no-install']) {
        // Links the new package into the workspace and records it in the lockfile: one command, done.
        const install = spawnSync('pnpm', ['install'], { cwd: repoRoot, stdio: 'inherit' });
        if (install.status !== 0) throw new Error('pnpm install failed; run it yourself, then pnpm build');
        console.log(
          `ready: pnpm dev runs it beside the others (or pnpm build && pnpm --filter @flotilla/${name} start)`,
        );
      }
      break;
    }
    case 'keys': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { admin: { type: 'boolean' }, file: { type: 'string' } },
      });
      const [action, name] = positionals;
      const file = values.file ?? defaultKeysFile();
      if (action === 'list') {
        for (const k of listKeys(file)) console.log(`${k.name} ${k.scope}`);
        break;
      }
      if ((action !== 'add' && action !== 'revoke') || !name)
        throw new UsageError('keys needs add NAME, revoke NAME or list');
      if (action === 'add') {
        const scope = values.admin ? 'admin' : 'tasks';
        const key = addKey(file, name, scope);
        // The key alone on stdout (KEY=$(pnpm -s keys add me)); the rest on stderr.
        console.log(key);
        console.error(`added ${name} (${scope}) to ${file}; this is the only time the key is shown`);
      } else {
        revokeKey(file, name);
        console.error(`revoked ${name} in ${file}`);
      }
      break;
    }
    default:
      console.error(usage);
      process.exitCode = command ? 2 : 0;
  }
} catch (err) {
  // One line and what to do about it; no stack trace (parseArgs' own errors are usage mistakes too).
  const usageMistake =
    err instanceof UsageError ||
    err instanceof RolloutUsageError ||
    (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof CliError && err.hint) console.error(`  ${err.hint}`);
  if (usageMistake) console.error(`run flotilla with no arguments for the usage`);
  process.exitCode = usageMistake ? 2 : 1;
}
