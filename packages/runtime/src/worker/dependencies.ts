import type { SubtaskEnvelope } from '@flotilla/contracts';
import { renderSubtaskOutput } from '../llm/untrusted.js';

/** Each dependency's output is cut to this many characters: three of them must not eat the token budget. */
const MAX_DEPENDENCY_CHARS = 4_000;

/**
 * The outputs of the subtasks this run depends on (the plan's dependsOn), for the end of a model's
 * user message: one untrusted-data block each, since another agent's output can quote a web page.
 * Empty when the run depends on none. Handlers that prompt a model append it; runToolLoop does.
 */
export function dependencyContext(envelope: Pick<SubtaskEnvelope, 'dependencies'>): string {
  const deps = envelope.dependencies ?? [];
  if (deps.length === 0) return '';
  return [
    '',
    '',
    `Results of ${deps.length === 1 ? 'the subtask' : 'the subtasks'} this one builds on (use them as its inputs):`,
    ...deps.map((d) => renderSubtaskOutput(d.subtaskId, d.role, d.output, MAX_DEPENDENCY_CHARS)),
  ].join('\n');
}
