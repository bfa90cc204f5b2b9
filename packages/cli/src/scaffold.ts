import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where compose.yaml wants new worker blocks; the scaffold inserts above this line. */
export const COMPOSE_MARKER = '# flotilla:new-workers (the scaffold inserts worker services above this line)';
/** In the redis service's secrets: each worker's Redis password, which its ACL file is made from. */
export const REDIS_USERS_MARKER =
  "# flotilla:new-worker-redis-users (the scaffold adds each new worker's password above this line)";
/** In the top-level secrets: where each worker's Redis password file is declared. */
export const SECRETS_MARKER =
  "# flotilla:new-worker-secrets (the scaffold adds each new worker's Redis password above this line)";

const pascal = (name: string) => name.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
const camel = (name: string) => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The files of a new worker, in the researcher's shape: schemas, definition, agent, entry point, tests. */
function workerFiles(name: string, description: string): Record<string, string> {
  const Name = pascal(name);
  const worker = camel(name);
  return {
    'package.json': `${JSON.stringify(
      {
        name: `@flotilla/${name}`,
        version: '0.1.0',
        private: true,
        description,
        type: 'module',
        // What makes this package a worker to `flotilla dev` and `flotilla demo` (see the CLI's workers.ts).
        flotilla: { role: name, devReplicas: 1 },
        exports: {
          '.': { '@flotilla/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
        },
        files: ['dist', '!dist/**/*.test.*'],
        scripts: {
          build: 'tsc -b',
          typecheck: 'tsc -b',
          start: 'node --import @flotilla/runtime/register dist/main.js',
          test: `vitest run --project ${name} --project ${name}:int --root ../..`,
        },
        dependencies: { '@flotilla/contracts': 'workspace:*', '@flotilla/runtime': 'workspace:*', zod: '^4.1.0' },
        devDependencies: { '@flotilla/test-utils': 'workspace:*' },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        extends: '../../tsconfig.json',
        compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
        include: ['src'],
        references: [{ path: '../contracts' }, { path: '../runtime' }, { path: '../test-utils' }],
      },
      null,
      2,
    )}\n`,
    'src/schemas.ts': `import { z } from 'zod';

/** What a ${name} subtask asks; its JSON Schema is what the planner fills in. */
export const ${Name}Input = z.object({
  task: z.string().min(1).max(4000).describe('What to do'),
});
export type ${Name}Input = z.output<typeof ${Name}Input>;

/** What a finished ${name} run returns. */
export const ${Name}Output = z.object({
  answer: z.string(),
});
export type ${Name}Output = z.output<typeof ${Name}Output>;
`,
    'src/index.ts': `import { defineWorker } from '@flotilla/runtime/worker';
import { run } from './agent.js';
import { ${Name}Input, ${Name}Output } from './schemas.js';

export const ${worker} = defineWorker({
  role: '${name}',
  description: ${JSON.stringify(description)},
  input: ${Name}Input,
  output: ${Name}Output,
  tools: [],
  handler: run,
});
`,
    'src/agent.ts': `import { type AgentContext, type AgentResult, runToolLoop } from '@flotilla/runtime/worker';
import type { ${Name}Input, ${Name}Output } from './schemas.js';

const SYSTEM = 'You are the ${name} agent. Do the task; answer in plain text.';

export function run(input: ${Name}Input, ctx: AgentContext): Promise<AgentResult<${Name}Output>> {
  return runToolLoop(ctx, { system: SYSTEM, user: input.task, finish: (answer) => ({ answer }) });
}
`,
    'src/main.ts': `import { runWorker } from '@flotilla/runtime/worker';
import { ${worker} } from './index.js';

await runWorker(${worker});
`,
    'src/schemas.test.ts': `import { describe, expect, it } from 'vitest';
import { ${Name}Input } from './schemas.js';

describe('${name} input', () => {
  it('rejects an empty task', () => {
    expect(${Name}Input.safeParse({ task: '' }).success).toBe(false);
  });
});
`,
    'src/agent.test.ts': `import { testAgentContext } from '@flotilla/runtime/testing';
import { describe, expect, it } from 'vitest';
import { run } from './agent.js';

describe('${name} agent', () => {
  it('answers its task on the offline model', async () => {
    const ctx = testAgentContext({ role: '${name}' });
    try {
      const result = await run({ task: 'say hello' }, ctx);
      expect(result).toMatchObject({ stopReason: 'finish', output: { answer: expect.stringContaining('say hello') } });
      expect(ctx.budget.usage().steps).toBe(1);
    } finally {
      ctx.budget.dispose();
    }
  });
});
`,
  };
}

function composeBlock(name: string): string {
  const imageVar = `${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_IMAGE`;
  return `  ${name}:
    <<: *flotilla-service
    # ${imageVar}: set by \`flotilla rollout\` when it promotes an image (packages/cli/README.md).
    image: \${${imageVar}:-flotilla/${name}:\${FLOTILLA_VERSION:-dev}}
    build:
      context: ..
      dockerfile: Dockerfile
      args:
        PACKAGE: ${name}
        VERSION: \${FLOTILLA_VERSION:-dev}
        REVISION: \${FLOTILLA_REVISION:-unknown}
    environment:
      <<: *flotilla-env
      SERVICE_NAME: ${name}
      # Its own Redis user (compose/redis/users-acl.sh makes one per redis_worker_* password).
      REDIS_USERNAME: worker-${name}
      REDIS_PASSWORD_FILE: /run/secrets/${redisSecret(name)}
    secrets: [llm_api_key, chroma_token, ${redisSecret(name)}]
    # outbound: the LLM API through the egress proxy, which lets it reach the model hosts only.
    networks: [backend, outbound]

`;
}

const redisSecret = (name: string) => `redis_worker_${name}`;

/** The worker's Redis password in compose.yaml: mounted into redis, and declared as a file. */
function composeSecrets(name: string): { redisUser: string; secret: string } {
  const env = `REDIS_WORKER_${name.toUpperCase().replace(/-/g, '_')}_SECRET_FILE`;
  return {
    redisUser: `      - ${redisSecret(name)}\n`,
    secret: `  ${redisSecret(name)}:\n    file: \${${env}:-./secrets/${redisSecret(name)}}\n`,
  };
}

/**
 * `flotilla new-worker NAME`: a new worker package in the researcher's shape, plus its one compose
 * service block. The package's `flotilla` field is what makes `flotilla dev`/`demo` run it. Refuses to
 * overwrite anything.
 */
export async function newWorker(
  name: string,
  { description, root = repoRoot }: { description?: string; root?: string } = {},
) {
  if (!/^[a-z][a-z0-9-]{1,40}$/.test(name)) {
    throw new Error(`worker name "${name}" must be lowercase letters, digits and dashes (2-41 chars)`);
  }
  const dir = join(root, 'packages', name);
  if (existsSync(dir)) throw new Error(`packages/${name} already exists`);
  const files = workerFiles(name, description ?? `The ${name} worker.`);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), content, { flag: 'wx' });
  }
  const lines = Object.keys(files).map((f) => `created packages/${name}/${f}`);
  const composePath = join(root, 'compose', 'compose.yaml');
  if (existsSync(composePath)) {
    const compose = await readFile(composePath, 'utf8');
    const { redisUser, secret } = composeSecrets(name);
    if (compose.includes(COMPOSE_MARKER) && compose.includes(REDIS_USERS_MARKER) && compose.includes(SECRETS_MARKER)) {
      await writeFile(
        composePath,
        compose
          .replace(`  ${COMPOSE_MARKER}`, `${composeBlock(name)}  ${COMPOSE_MARKER}`)
          .replace(`      ${REDIS_USERS_MARKER}`, `${redisUser}      ${REDIS_USERS_MARKER}`)
          .replace(`  ${SECRETS_MARKER}`, `${secret}  ${SECRETS_MARKER}`)
          // The egress proxy refuses callers it does not name: the worker may reach the model hosts.
          .replace(/^( +EGRESS_SERVICES: .*)$/m, `$1 ${name}`)
          .replace(
            /^( +)(EGRESS_ALLOW_CODER: \*llm-hosts\n)/m,
            `$1$2$1EGRESS_ALLOW_${name.toUpperCase().replace(/-/g, '_')}: *llm-hosts\n`,
          ),
      );
      lines.push(
        `added service "${name}" and its Redis password (secret ${redisSecret(name)}) to compose/compose.yaml;` +
          ' scripts/make-secrets writes the password file',
      );
      // Swarm's copy of compose.yaml is generated from it (docs/swarm.md): keep it in step.
      const swarmConfig = join(root, 'scripts', 'swarm-config.mjs');
      if (existsSync(swarmConfig)) {
        try {
          execFileSync(process.execPath, [swarmConfig], { stdio: 'ignore' });
          lines.push('regenerated compose/compose.stack.yaml (the Swarm stack file)');
        } catch {
          // A fresh checkout before `pnpm install` has no yaml package to run it with.
          lines.push('run `node scripts/swarm-config.mjs` to regenerate compose/compose.stack.yaml (Swarm)');
        }
      }
    } else {
      lines.push(
        `compose/compose.yaml lacks the new-worker markers; add this block by hand:\n${composeBlock(name)}` +
          `and to the redis service's secrets:\n${redisUser}and to the top-level secrets:\n${secret}`,
      );
    }
  }
  return lines;
}
