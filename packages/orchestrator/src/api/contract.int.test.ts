// Needs the real API listening on loopback (auth on) over a real Redis, with plan and aggregate
// workers and a role, so tasks finish and event streams end: the claim under test is that the
// running service obeys its own /openapi.json, checked from outside by a property-based contract
// tester (schemathesis) that reads only the document. A second, unrelated implementation of the
// document's meaning is the point: our own tests share our reading of it.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, type Role, startHarness, startRole, testKeys } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
// A tenant's key for the task operations and the operator's for /v1/roles: each run below uses one,
// so the other scope's operations answer 403, which the document declares.
const keys = testKeys({ tenant: 'tasks', operator: 'admin' });

/** The version .ci/run pins; one place says which schemathesis the contract holds against. */
const pinned = /^SCHEMATHESIS_VERSION=(\S+)$/m.exec(readFileSync(join(repoRoot, '.ci/run'), 'utf8'))?.[1];
const INSTALL = `install it as CI does (.ci/run): python3 -m venv ~/.cache/flotilla/venv && ~/.cache/flotilla/venv/bin/pip install schemathesis==${pinned}`;

/** schemathesis in the CI virtualenv (.ci/run installs it there) or on PATH. */
function findSchemathesis(): string | undefined {
  const cache = process.env.FLOTILLA_CACHE ?? join(homedir(), '.cache', 'flotilla');
  const candidates = [
    join(cache, 'venv', 'bin', 'schemathesis'),
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'schemathesis')),
  ];
  return candidates.find((p) => existsSync(p));
}

/** Runs the CLI without blocking the event loop: the API under test answers from this process. */
async function schemathesis(bin: string, args: string[], cwd: string): Promise<{ code: unknown; output: string }> {
  const proc = startProcess(bin, args, { cwd, env: { NO_COLOR: '1', COLUMNS: '120' } });
  const code = await proc.exited;
  return { code, output: proc.stdout() + proc.stderr() };
}

let h: Harness;
let role: Role;
let work: string;
beforeAll(async () => {
  h = await startHarness({
    llm: offlineLlm(),
    listen: true,
    // Auth on, as deployed, and the rate limiter on (its headers are checked against the document)
    // but raised: the tester sends over a thousand requests a minute from one client. 429 is still
    // documented on every /v1 operation (checked below).
    app: { keys: keys.ring, rateLimit: { max: 1_000_000, timeWindowMs: 60_000 }, events: { heartbeatMs: 1000 } },
  });
  role = await startRole(h, {
    role: 'researcher',
    handler: async () => ({ stopReason: 'finish', output: { answer: 'found it' } }),
  });
  // schemathesis writes caches (.schemathesis, .hypothesis) into its working directory.
  work = mkdtempSync(join(tmpdir(), 'flotilla-contract-'));
});
afterAll(async () => {
  await role?.close();
  await h?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the API against its OpenAPI document', () => {
  const bin = findSchemathesis();

  it('is found, at the version CI pins', async () => {
    expect(bin, `schemathesis not found: ${INSTALL}`).toBeDefined();
    const { output } = await schemathesis(bin as string, ['--version'], work);
    expect(output.trim(), `wrong schemathesis version: ${INSTALL}`).toBe(`schemathesis, version ${pinned}`);
  });

  it('documents 401, 403 and 429, and the scope, on every /v1 operation', async () => {
    // (That the document lists exactly the routes fastify serves is checked at start-up: buildApp's
    // onReady refuses to start on a difference, so this harness would not have started.)
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<
        string,
        Record<string, { responses?: Record<string, unknown>; security?: Record<string, string[]>[] }>
      >;
    };
    const operations = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, item]) =>
        Object.entries(item)
          .filter(([key]) => key !== 'parameters')
          .map(([method, op]) => ({
            name: `${method} ${path}`,
            statuses: Object.keys(op.responses ?? {}),
            scope: op.security?.[0]?.bearer,
          })),
      );
    expect(operations.length).toBeGreaterThanOrEqual(6);
    for (const { name, statuses, scope } of operations) {
      expect(statuses, name).toEqual(expect.arrayContaining(['401', '403', '429']));
      const operator = name === 'get /v1/roles' || name.includes(' /v1/admin/');
      expect(scope, name).toEqual(operator ? ['admin'] : ['tasks']);
    }
  });

  it('passes every schemathesis check, with auth on', { timeout: 240_000 }, async () => {
    expect(bin, `schemathesis not found: ${INSTALL}`).toBeDefined();
    const { code, output } = await schemathesis(
      bin as string,
      [
        'run',
        `${h.url}/openapi.json`,
        '--header',
        `Authorization: Bearer ${keys.key('tenant')}`,
        // Every check schemathesis has, none excluded: status codes, content types, headers and
        // bodies (SSE events too) against the document, no 5xx, invalid data refused and valid
        // data accepted, 405 with Allow for undeclared methods, 401 without the token, created
        // resources readable.
        '--checks',
        'all',
        // Bounded so the run takes well under a minute on two busy cores (about 20 s idle); a
        // failure prints its seed and a curl line to replay it.
        '--max-examples',
        '200',
        '--workers',
        '1',
        // Streams of unfinished tasks are cut here, which schemathesis reads as "cut short", not as a failure.
        '--request-timeout',
        '5',
        '--generation-database',
        'none',
        '--no-color',
      ],
      work,
    );
    expect(code, output).toBe(0);
    // Every generated case passed (warnings, e.g. random ids answering 404, are not failures).
    expect(output).toMatch(/Test cases:\s+(\d+) generated, \1 passed/);
  });

  it("passes every schemathesis check on the operator's operations, with an admin key", {
    timeout: 180_000,
  }, async () => {
    expect(bin, `schemathesis not found: ${INSTALL}`).toBeDefined();
    // The run above holds a tenant's key, so the admin operations only ever answered it 403; this
    // one proves their admin answers (bodies, 404s, 409s, 422s) against the document too. The ids
    // come from the document, so an operation added later is tested without editing this list.
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { operationId?: string; security?: Record<string, string[]>[] }>>;
    };
    const adminOperations = Object.values(doc.paths).flatMap((item) =>
      Object.values(item).flatMap((op) =>
        op?.security?.[0]?.bearer?.[0] === 'admin' && op.operationId ? [op.operationId] : [],
      ),
    );
    expect(adminOperations).toEqual(expect.arrayContaining(['listRoles', 'setKillSwitch', 'retryJob']));
    const { code, output } = await schemathesis(
      bin as string,
      [
        'run',
        `${h.url}/openapi.json`,
        '--header',
        `Authorization: Bearer ${keys.key('operator')}`,
        ...adminOperations.flatMap((id) => ['--include-operation-id', id]),
        '--checks',
        'all',
        // Stateful testing follows links between operations, which this filter leaves out.
        '--phases',
        'examples,coverage,fuzzing',
        '--max-examples',
        '50',
        '--generation-database',
        'none',
        '--no-color',
      ],
      work,
    );
    expect(code, output).toBe(0);
    expect(output).toMatch(/Test cases:\s+(\d+) generated, \1 passed/);
  });

  it('fails when the document and the API disagree (control)', { timeout: 60_000 }, async () => {
    expect(bin, `schemathesis not found: ${INSTALL}`).toBeDefined();
    // The real document, minus the 404 GET /v1/tasks/{id} answers for an unknown task.
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const getTask = doc.paths['/v1/tasks/{id}']?.get;
    delete getTask?.responses['404'];
    const file = join(work, 'doctored.json');
    writeFileSync(file, JSON.stringify(doc));
    const { code, output } = await schemathesis(
      bin as string,
      [
        'run',
        file,
        '--url',
        h.url,
        '--header',
        `Authorization: Bearer ${keys.key('tenant')}`,
        '--include-operation-id',
        'getTask',
        '--checks',
        'status_code_conformance',
        // Stateful testing needs the links to other operations, which this filter leaves out.
        '--phases',
        'coverage,fuzzing',
        '--max-examples',
        '10',
        '--generation-database',
        'none',
        '--no-color',
      ],
      work,
    );
    expect(code, output).not.toBe(0);
    expect(output).toMatch(/Undocumented status code\s+Received: 404/);
  });
});
