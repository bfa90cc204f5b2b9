#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { demo, dev } from './demo.js';
import { newWorker, repoRoot } from './scaffold.js';

class UsageError extends Error {}

const usage = `usage: flotilla <command>
  demo [--goal TEXT]     run the mesh locally, submit one goal, print progress and the answer
  dev                    run the mesh locally on :8080 until Ctrl-C
  new-worker NAME [--description TEXT] [--no-install]
                         scaffold packages/NAME as a new worker role, add its compose service, pnpm install`;

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
    default:
      console.error(usage);
      process.exitCode = command ? 2 : 0;
  }
} catch (err) {
  console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
