#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
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
                         the clients and their scopes`;

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
  console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
