#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ApiClient, CliError, resolveConfig } from './client.js';
import { approvalStatus, decide, listApprovals } from './commands/approvals.js';
import { UsageError } from './commands/errors.js';
import { commandContext } from './commands/io.js';
import {
  failedJobs,
  queues,
  retryJob,
  retryTarget,
  roles,
  setKillSwitch,
  showKillSwitch,
} from './commands/operator.js';
import { rolloutCommand } from './commands/rollout-args.js';
import { submit } from './commands/submit.js';
import { cancelTask, listTasks, showTask } from './commands/tasks.js';
import { demo, dev } from './demo.js';
import { compareCommand, evalCommand } from './eval/command.js';
import { addKey, defaultKeysFile, listKeys, revokeKey } from './keys.js';
import { newWorker, repoRoot } from './scaffold.js';

const usage = `usage: flotilla <command>

Against the API at $FLOTILLA_URL (default http://127.0.0.1:8080), with the key from $FLOTILLA_API_KEY,
else the file $FLOTILLA_API_KEY_FILE, else ./.flotilla-key (none needed by pnpm dev's mesh).
--json on a read prints the API's body and nothing else; colours only on a terminal (NO_COLOR: none).
Exit status: 0 done, 1 the CLI could not do it (it says why and what to do), 2 a usage mistake.

tasks (a tasks key):
  submit GOAL [--watch] [--max-steps N] [--max-tool-calls N] [--max-seconds N] [--max-tokens N]
         [--idempotency-key K] [--json]
                         start a task and print its id (--json: the accepted body); --watch follows it
                         live (subtasks, replicas, budget bars, approvals waiting) and prints the answer,
                         exiting 0 completed, 3 failed, 4 cancelled, 5 completed but partial
  tasks [--status S]... [--limit N] [--json]
                         your tasks, newest first (default 20)
  status ID [--json]     one task: its subtasks, their usage, the answer
  cancel ID [--json]     cancel an unfinished task

operator (an admin key):
  roles [--json]         each role's replicas: live or stale, heartbeat age, image version
  queues [--json]        each role's queue: waiting, active, delayed, failed, completed, jobs/min, p50/p95
  failed ROLE [--limit N] [--json]
                         the role's failed jobs and why they failed
  retry ROLE JOB [--json]
                         put a failed job back in its queue (also: retry ROLE/JOB)
  kill-switch [--json]   what is switched off, by whom and why
  kill-switch on|off [--tool T]... [--writes] --reason R [--json]
                         stop (on) or restore (off) every tool, every --tool T (name or glob), or
                         with --writes every tool that writes; --reason is required and audited
  rollout SERVICE --image IMAGE [--canary 10%|N] [--window 60s] [--max-error-rate 0.05]
          [--max-p95-ratio 1.5] [--min-jobs 20] [--role ROLE] [--kill-switch-on-fail TOOL] [--json]
                         canary replicas of IMAGE beside the stable ones (Docker Compose v2), compared
                         over the window, then promoted or rolled back by itself; exits 0 promoted,
                         3 rolled back, 4 too few jobs to decide (rolled back), 130 interrupted
  rollout SERVICE --abort
                         remove canary replicas an interrupted rollout left; stable keeps serving

approvals (an admin key):
  approvals [--status pending|approved|denied|timed_out|cancelled] [--limit N] [--json]
                         tool calls waiting for a person (default: pending)
  approve ID --reason R [--json]
  deny ID --reason R [--json]
                         decide one; the first decision wins, a second gets "already decided"

keys (the orchestrator's key file):
  keys add NAME [--admin] [--file PATH]
                         add an API key (tenant NAME; --admin: the operator's endpoints instead of tasks);
                         prints the key once, stores only its hash (default file: $API_KEYS_FILE,
                         else compose/secrets/api_keys)
  keys revoke NAME [--file PATH]
                         remove NAME's key; requests with it get 401 within API_KEYS_RELOAD_MS
  keys list [--file PATH]
                         the clients and their scopes

dev (this checkout):
  demo [--goal TEXT]     run the mesh locally, submit one goal, print progress and the answer
  dev                    run the mesh locally on :8080 until Ctrl-C
  new-worker NAME [--description TEXT] [--no-install]
                         scaffold packages/NAME as a new worker role, add its compose service, pnpm install
  eval [--only ID,...] [--label L] [--out FILE] [--task-seconds N]
                         run the eval goals on a local mesh with the model the environment chooses
                         (docs/eval.md; pnpm eval also serves a local model); prints a table, writes JSON
  eval --compare A.json B.json
                         two eval runs side by side`;

/** A positive number option (the budget's), or a usage error naming it. */
function positive(name: string, value: string | undefined, integer = true): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} needs a positive ${integer ? 'integer' : 'number'}, not "${value}"`);
  return n;
}

/** --reason for an audited change: required, and not blank (the API would refuse it anyway, later). */
function reasonOf(command: string, value: string | undefined): string {
  if (!value?.trim()) throw new UsageError(`${command} needs --reason "why" (it is recorded with your key's name)`);
  return value;
}

/** Exactly one ID positional, or a usage error naming the command. */
function oneId(command: string, positionals: string[], what = 'ID'): string {
  const id = positionals[0];
  if (!id || positionals.length > 1) throw new UsageError(`${command} needs one ${what}`);
  return id;
}

const client = () => new ApiClient(resolveConfig());
const json = { json: { type: 'boolean' } } as const;

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
    case 'eval': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          only: { type: 'string' },
          label: { type: 'string' },
          out: { type: 'string' },
          'task-seconds': { type: 'string' },
          compare: { type: 'boolean' },
        },
      });
      if (values.compare) {
        const [a, b] = positionals;
        if (!a || !b || positionals.length !== 2)
          throw new UsageError('eval --compare needs two run files: A.json B.json');
        compareCommand(a, b);
        break;
      }
      if (positionals.length)
        throw new UsageError(`eval takes no arguments (got ${positionals.join(' ')}); see --only`);
      const { run } = await evalCommand({
        only: values.only
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        label: values.label,
        out: values.out,
        taskSeconds: positive('task-seconds', values['task-seconds']),
      });
      // 0 when nothing failed for flotilla's sake: model mistakes are what the eval measures, not errors.
      process.exitCode = run.results.some((r) => !r.pass && r.fault === 'flotilla') ? 3 : 0;
      break;
    }
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
    case 'roles':
    case 'queues': {
      const { values } = parseArgs({ args: rest, options: json });
      const ctx = commandContext(client(), Boolean(values.json));
      process.exitCode = command === 'roles' ? await roles(ctx) : await queues(ctx);
      break;
    }
    case 'failed': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { ...json, limit: { type: 'string' } },
      });
      const role = oneId('failed', positionals, 'ROLE (flotilla roles lists them)');
      process.exitCode = await failedJobs(commandContext(client(), Boolean(values.json)), role, {
        limit: positive('limit', values.limit),
      });
      break;
    }
    case 'retry': {
      const { positionals, values } = parseArgs({ args: rest, allowPositionals: true, options: json });
      const { role, jobId } = retryTarget(positionals);
      process.exitCode = await retryJob(commandContext(client(), Boolean(values.json)), role, jobId);
      break;
    }
    case 'kill-switch': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          ...json,
          tool: { type: 'string', multiple: true },
          writes: { type: 'boolean' },
          reason: { type: 'string' },
        },
      });
      const ctx = () => commandContext(client(), Boolean(values.json));
      const [action, ...extra] = positionals;
      if (extra.length > 0) throw new UsageError(`kill-switch takes on or off, not "${extra.join(' ')}"`);
      if (action === undefined) {
        if (values.tool || values.writes || values.reason !== undefined)
          throw new UsageError('kill-switch needs on or off before --tool, --writes or --reason');
        process.exitCode = await showKillSwitch(ctx());
        break;
      }
      if (action !== 'on' && action !== 'off') throw new UsageError(`kill-switch takes on or off, not "${action}"`);
      const tools = values.tool ?? [];
      if (tools.length > 0 && values.writes) throw new UsageError('kill-switch takes --tool or --writes, not both');
      process.exitCode = await setKillSwitch(ctx(), {
        on: action === 'on',
        tools,
        writes: Boolean(values.writes),
        reason: reasonOf(`kill-switch ${action}`, values.reason),
      });
      break;
    }
    case 'approvals': {
      const { values } = parseArgs({
        args: rest,
        options: { ...json, status: { type: 'string' }, limit: { type: 'string' } },
      });
      process.exitCode = await listApprovals(commandContext(client(), Boolean(values.json)), {
        status: approvalStatus(values.status),
        limit: positive('limit', values.limit),
      });
      break;
    }
    case 'approve':
    case 'deny': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { ...json, reason: { type: 'string' } },
      });
      const id = oneId(command, positionals, 'approval ID (flotilla approvals lists them)');
      const reason = reasonOf(command, values.reason);
      process.exitCode = await decide(commandContext(client(), Boolean(values.json)), id, command, reason);
      break;
    }
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
    case '--help':
    case '-h':
    case 'help':
      console.log(usage);
      break;
    default:
      console.error(usage);
      if (command) console.error(`\nflotilla: no command "${command}"`);
      process.exitCode = command ? 2 : 0;
  }
} catch (err) {
  // One line and what to do about it; no stack trace (parseArgs' own errors are usage mistakes too).
  const usageMistake = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof CliError && err.hint) console.error(`  ${err.hint}`);
  if (usageMistake) console.error(`flotilla --help lists the commands and their options`);
  process.exitCode = usageMistake ? 2 : 1;
}
