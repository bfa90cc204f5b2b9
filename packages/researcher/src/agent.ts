import type { AgentContext, AgentResult, Observation } from '@flotilla/runtime/worker';
import { runToolLoop } from '@flotilla/runtime/worker';
import type { ResearcherInput, ResearcherOutput } from './schemas.js';

const SYSTEM = [
  'You are a careful research agent in a multi-agent system.',
  'Use the tools to look things up before answering: memory.search for earlier notes, http.get for allowlisted pages,',
  'notes.write to save a finding worth keeping. Cite the source of every finding.',
  'When you know enough, answer in plain text without calling a tool.',
].join(' ');

function sourceOf(o: Observation): string {
  const args = (o.call.arguments ?? {}) as Record<string, unknown>;
  if (typeof args.url === 'string') return args.url;
  return o.call.name;
}

/** Findings are what the tools actually returned, so every claim has a checkable source. */
function toOutput(answer: string, observations: Observation[]): ResearcherOutput {
  const findings = observations
    .filter((o) => o.outcome.ok && o.call.name !== 'notes.write')
    .map((o) => ({
      claim: JSON.stringify(o.outcome.ok ? o.outcome.output : null).slice(0, 500),
      source: sourceOf(o),
    }));
  return {
    answer: answer || 'No answer was reached within the budget.',
    findings,
    sources: [...new Set(findings.map((f) => f.source))],
  };
}

export function research(input: ResearcherInput, ctx: AgentContext): Promise<AgentResult<ResearcherOutput>> {
  const user = input.context ? `${input.question}\n\nContext:\n${input.context}` : input.question;
  return runToolLoop(ctx, { system: SYSTEM, user, finish: toOutput });
}
