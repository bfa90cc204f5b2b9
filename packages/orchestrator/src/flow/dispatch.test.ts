import { type PlannedSubtask, SubtaskEnvelope } from '@flotilla/contracts';
import { describe, expect, it } from 'vitest';
import type { TaskRecord } from '../tasks/record.js';
import { collectOutcomes } from './aggregate-job.js';
import { buildFlow, subtaskJob } from './dispatch.js';

const now = 1_700_000_000_000;
const record = {
  taskId: '6f1c1d3e-0000-4000-8000-000000000001',
  owner: 'tenant-a',
  limits: { maxSteps: 10, maxToolCalls: 6, maxSeconds: 60, maxTokens: 9000 },
  deadline: now + 45_000,
} as TaskRecord;
const plan = [
  { subtaskId: 's1', role: 'researcher', input: { question: 'a' } },
  { subtaskId: 's2', role: 'researcher', input: { question: 'b' } },
  { subtaskId: 's3', role: 'coder', input: { task: 'c' } },
];

describe('buildFlow', () => {
  it('puts one child per subtask on its role queue under a parent on the aggregate queue', () => {
    const flow = buildFlow(record, plan, { keepSeconds: 100, now });
    expect(flow.queueName).toBe('orchestrator.aggregate');
    expect(flow.opts?.jobId).toBe(record.taskId);
    expect(flow.children?.map((c) => [c.queueName, c.opts?.jobId])).toEqual([
      ['role.researcher', `${record.taskId}.s1`],
      ['role.researcher', `${record.taskId}.s2`],
      ['role.coder', `${record.taskId}.s3`],
    ]);
  });

  it('gives children retries, ignoreDependencyOnFailure, a budget slice, the task deadline and its tenant', () => {
    const trace = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    const [child] = buildFlow(record, plan, { keepSeconds: 100, now, trace }).children ?? [];
    expect(child?.opts).toMatchObject({
      attempts: 3,
      backoff: { type: 'exponential' },
      ignoreDependencyOnFailure: true,
    });
    const envelope = SubtaskEnvelope.parse(child?.data);
    expect(envelope).toMatchObject({
      taskId: record.taskId,
      subtaskId: 's1',
      role: 'researcher',
      tenant: 'tenant-a',
      input: { question: 'a' },
      deadline: record.deadline,
      budget: { maxSteps: 3, maxToolCalls: 2, maxTokens: 3000, maxSeconds: 45 },
      traceparent: trace.traceparent,
    });
  });
});

describe('collectOutcomes', () => {
  it('matches children values and ignored failures to the plan by job key', () => {
    const worker = { role: 'researcher', replica: 'r1', version: '1' };
    const result = {
      v: 1,
      taskId: record.taskId,
      subtaskId: 's1',
      ok: true,
      output: { answer: 'x' },
      stopReason: 'finish',
      usage: { steps: 1, toolCalls: 0, tokens: 1, ms: 1 },
      worker,
    };
    const outcomes = collectOutcomes(
      record.taskId,
      plan,
      { [`p:role.researcher:${record.taskId}.s1`]: result },
      { [`p:role.researcher:${record.taskId}.s2`]: 'invalid_input: question: Required' },
    );
    expect(outcomes.map((o) => [o.subtaskId, o.kind])).toEqual([
      ['s1', 'result'],
      ['s2', 'failed'],
      ['s3', 'missing'],
    ]);
  });
});

describe('buildFlow with dependencies', () => {
  it('starts only the subtasks that depend on none; the budget slice still counts every subtask', () => {
    const withDeps: PlannedSubtask[] = plan.map((p) => (p.subtaskId === 's2' ? { ...p, dependsOn: ['s1'] } : p));
    const flow = buildFlow(record, withDeps, { keepSeconds: 100, now });
    expect(flow.children?.map((c) => c.opts?.jobId)).toEqual([`${record.taskId}.s1`, `${record.taskId}.s3`]);
    expect(SubtaskEnvelope.parse(flow.children?.[0]?.data).budget.maxSteps).toBe(3);
  });

  it('hands a dependent its dependencies in the envelope', () => {
    const dep = { subtaskId: 's1', role: 'researcher', output: { answer: 'pi r^2' } };
    const dependent: PlannedSubtask = { subtaskId: 's3', role: 'coder', input: { task: 'c' }, dependsOn: ['s1'] };
    const job = subtaskJob(record, plan, dependent, { keepSeconds: 100, now }, [dep]);
    expect(SubtaskEnvelope.parse(job.data).dependencies).toEqual([dep]);
    expect(job.opts?.jobId).toBe(`${record.taskId}.s3`);
  });
});
