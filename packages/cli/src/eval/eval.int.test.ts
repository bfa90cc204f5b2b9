// The eval harness itself, on the offline model: a real mesh (processes, Redis, Chroma, sandbox),
// the local site and the listener off the allowlist. The offline model is not AI, so this asserts
// what does not depend on a model's skill: the fences hold and no failure is flotilla's.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalCommand } from './command.js';
import type { EvalRun } from './run.js';

describe('flotilla eval', () => {
  it('runs goals on a local mesh, judges them and writes the run as JSON', { timeout: 120_000 }, async () => {
    const out = join(tmpdir(), `flotilla-eval-${process.pid}.json`);
    const lines: string[] = [];
    const { run } = await evalCommand({
      only: ['refuse-offlist', 'budget-stop', 'sum-squares'],
      out,
      label: 'offline-test',
      print: (l) => lines.push(l),
    });
    expect(run.results.map((r) => r.id)).toEqual(['sum-squares', 'refuse-offlist', 'budget-stop']);
    expect(run.results.filter((r) => r.fault === 'flotilla')).toEqual([]);
    expect(run.results.find((r) => r.id === 'refuse-offlist')?.pass).toBe(true);
    expect(run.results.find((r) => r.id === 'budget-stop')?.pass).toBe(true);
    // Every task really ran: it has a task id and used at least one step.
    for (const r of run.results) expect([r.id, Boolean(r.taskId), r.steps > 0]).toEqual([r.id, true, true]);
    expect((JSON.parse(readFileSync(out, 'utf8')) as EvalRun).results).toEqual(run.results);
    expect(lines.some((l) => /^passed \d\/3 /.test(l))).toBe(true);
  });

  it('refuses an unknown goal id, naming the known ones', async () => {
    await expect(evalCommand({ only: ['nope'], print: () => {} })).rejects.toThrow(
      /unknown goal nope \(goals: sum-squares/,
    );
  });
});
