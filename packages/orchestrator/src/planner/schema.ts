import type { RoleInfo } from '@flotilla/contracts';

/** Upper bound on subtasks per plan unless PLAN_MAX_SUBTASKS says otherwise. */
export const DEFAULT_MAX_SUBTASKS = 8;

/** A role's input schema without the keys that only make sense at a document's root. */
export function embeddableSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _ignored, $id: _id, ...rest } = schema;
  return rest;
}

/**
 * The JSON Schema the planner asks the model to fill: a list of subtasks, each one branch of an
 * anyOf per live role, so a schema-following model can only name a role that can run and must
 * give that role's input. `dependsOn` names earlier subtasks (s1, s2, ... in plan order) whose
 * outputs a subtask needs. The offline model generates from exactly this shape.
 */
export function planResponseSchema(
  roles: readonly RoleInfo[],
  maxSubtasks = DEFAULT_MAX_SUBTASKS,
): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      subtasks: {
        type: 'array',
        minItems: 1,
        maxItems: maxSubtasks,
        items: {
          anyOf: roles.map((r) => ({
            type: 'object',
            properties: {
              role: { const: r.role },
              input: embeddableSchema(r.inputSchema),
              dependsOn: {
                type: 'array',
                items: { type: 'string', pattern: '^s[1-9][0-9]*$' },
                uniqueItems: true,
                maxItems: maxSubtasks - 1,
              },
            },
            required: ['role', 'input'],
            additionalProperties: false,
          })),
        },
      },
    },
    required: ['subtasks'],
    additionalProperties: false,
  };
}
