import type { PlannedSubtask, RoleInfo } from '@flotilla/contracts';
import type { ChatMessage, LlmClient } from '@flotilla/runtime/llm';
import { DEFAULT_MAX_SUBTASKS, planResponseSchema } from './schema.js';
import { PlanValidator } from './validate.js';

export interface PlannerOptions {
  llm: LlmClient;
  /** Most subtasks one plan may have (PLAN_MAX_SUBTASKS). Default 8. */
  maxSubtasks?: number;
  /** Completion token cap per planning call. Default 4096. */
  maxTokens?: number;
}

/** How planning ended: a plan, or a reason the task fails with. Data, not an exception. */
export type PlanOutcome =
  | { ok: true; subtasks: PlannedSubtask[]; tokens: number; repaired: boolean }
  | { ok: false; reason: string; tokens: number };

export interface Planner {
  /** Turns a goal into subtasks for the given live roles; repairs an invalid plan once. */
  plan(goal: string, roles: readonly RoleInfo[], options?: { signal?: AbortSignal }): Promise<PlanOutcome>;
}

/** Errors listed back to the model (and in the failure reason) are capped so one bad plan can't bloat a prompt. */
const MAX_REPORTED_ERRORS = 20;

function systemPrompt(roles: readonly RoleInfo[], maxSubtasks: number): string {
  const lines = roles.map((r) => `- ${r.role}: ${r.description || '(no description)'}`);
  return [
    'You are the planner of a team of agents. Split the user goal into independent subtasks that can run in parallel,',
    `at most ${maxSubtasks}, each assigned to one of these roles, and give each subtask the input its role expects.`,
    'Answer only with JSON matching the response schema.',
    'Roles:',
    ...lines,
  ].join('\n');
}

export function createPlanner({ llm, maxSubtasks = DEFAULT_MAX_SUBTASKS, maxTokens = 4096 }: PlannerOptions): Planner {
  const validator = new PlanValidator();

  return {
    async plan(goal, liveRoles, { signal } = {}) {
      const roles = validator.plannable(liveRoles);
      if (roles.length === 0) {
        const why = liveRoles.length === 0 ? 'no live worker roles' : 'no live role publishes a usable input schema';
        return { ok: false, reason: `no_live_roles: ${why}; start a worker and retry`, tokens: 0 };
      }
      const schema = planResponseSchema(roles, maxSubtasks);
      let tokens = 0;

      const attempt = async (messages: ChatMessage[]) => {
        const res = await llm.chat(
          { messages, responseFormat: { name: 'plan', schema }, maxTokens, temperature: 0 },
          { signal },
        );
        tokens += res.usage.promptTokens + res.usage.completionTokens;
        let parsed: unknown;
        try {
          parsed = JSON.parse(res.content);
        } catch {
          return {
            content: res.content,
            check: { ok: false as const, errors: ['plan: the response is not valid JSON'] },
          };
        }
        return { content: res.content, check: validator.check(parsed, roles, maxSubtasks) };
      };

      const system = systemPrompt(roles, maxSubtasks);
      const first = await attempt([
        { role: 'system', content: system },
        { role: 'user', content: goal },
      ]);
      if (first.check.ok) return { ok: true, subtasks: first.check.subtasks, tokens, repaired: false };

      // The repair keeps the goal as the last user message (what planners, the offline one included,
      // read as the goal) and puts the rejected plan and its errors in the instructions.
      const errors = first.check.errors.slice(0, MAX_REPORTED_ERRORS);
      const second = await attempt([
        {
          role: 'system',
          content: [
            system,
            '',
            'Your previous plan was rejected:',
            first.content.slice(0, 4000),
            'Problems:',
            ...errors.map((e) => `- ${e}`),
            'Return a corrected plan.',
          ].join('\n'),
        },
        { role: 'user', content: goal },
      ]);
      if (second.check.ok) return { ok: true, subtasks: second.check.subtasks, tokens, repaired: true };
      const reasons = second.check.errors.slice(0, MAX_REPORTED_ERRORS).join('; ');
      return { ok: false, reason: `plan_invalid: ${reasons}`, tokens };
    },
  };
}
