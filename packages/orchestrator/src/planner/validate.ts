import type { PlannedSubtask, RoleInfo } from '@flotilla/contracts';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { findCycle } from './graph.js';
import { embeddableSchema } from './schema.js';

// ajv-formats is CommonJS with `exports.default`; under nodenext the default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => void;

/** Compiled validators are cached by schema text; past this many a fresh Ajv starts, since Ajv never forgets a schema. */
const MAX_CACHED_SCHEMAS = 256;

export type PlanCheck = { ok: true; subtasks: PlannedSubtask[] } | { ok: false; errors: string[] };

/**
 * Checks a model's plan against the live roles: the shape, the role names, and each input against
 * its role's JSON Schema (the same schema the worker's zod input was published as), so a bad plan
 * is caught here, where it can be repaired, instead of as invalid_input on a worker.
 */
export class PlanValidator {
  #ajv = PlanValidator.#newAjv();
  readonly #cache = new Map<string, ValidateFunction | Error>();

  static #newAjv(): Ajv2020 {
    // strict: false because role schemas come from other services and may carry annotations Ajv doesn't know.
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    return ajv;
  }

  /** The validator for a role's input schema, or the reason it cannot be compiled. */
  validatorFor(schema: Record<string, unknown>): ValidateFunction | Error {
    const key = JSON.stringify(schema);
    const cached = this.#cache.get(key);
    if (cached) return cached;
    if (this.#cache.size >= MAX_CACHED_SCHEMAS) {
      this.#cache.clear();
      this.#ajv = PlanValidator.#newAjv();
    }
    let compiled: ValidateFunction | Error;
    try {
      compiled = this.#ajv.compile(embeddableSchema(schema));
    } catch (err) {
      compiled = err instanceof Error ? err : new Error(String(err));
    }
    this.#cache.set(key, compiled);
    return compiled;
  }

  /** Roles whose input schema compiles; a role publishing a broken schema cannot be planned for. */
  plannable(roles: readonly RoleInfo[]): RoleInfo[] {
    return roles.filter((r) => !(this.validatorFor(r.inputSchema) instanceof Error));
  }

  /**
   * `after`, for a re-plan: the subtasks already in the plan (new ones are numbered after them) and
   * those of them that ended ok, which new subtasks may depend on.
   */
  check(
    plan: unknown,
    roles: readonly RoleInfo[],
    maxSubtasks: number,
    after: { count: number; ok: readonly string[] } = { count: 0, ok: [] },
  ): PlanCheck {
    const errors: string[] = [];
    if (typeof plan !== 'object' || plan === null || Array.isArray(plan))
      return { ok: false, errors: ['plan: must be an object'] };
    const list = (plan as { subtasks?: unknown }).subtasks;
    if (!Array.isArray(list)) return { ok: false, errors: ['subtasks: must be an array'] };
    if (list.length === 0) return { ok: false, errors: ['subtasks: must contain at least 1 subtask'] };
    if (list.length > maxSubtasks)
      errors.push(`subtasks: must contain at most ${maxSubtasks} subtasks, got ${list.length}`);

    const byRole = new Map(roles.map((r) => [r.role, r]));
    const subtasks: PlannedSubtask[] = [];
    const items = list.slice(0, maxSubtasks);
    const ids = items.map((_, i) => `s${after.count + i + 1}`);
    const known = [...after.ok, ...ids];
    items.forEach((item: unknown, i) => {
      const at = `subtasks.${i}`;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        errors.push(`${at}: must be an object with role and input`);
        return;
      }
      const { role, input, dependsOn: rawDeps } = item as { role?: unknown; input?: unknown; dependsOn?: unknown };
      const dependsOn = checkDependsOn(rawDeps, ids[i] as string, known, `${at}.dependsOn`, errors);
      const info = typeof role === 'string' ? byRole.get(role) : undefined;
      if (!info) {
        const live = [...byRole.keys()].join(', ');
        errors.push(`${at}.role: ${JSON.stringify(role)} is not a live role (live: ${live})`);
        return;
      }
      if (input === undefined) {
        errors.push(`${at}.input: is required`);
        return;
      }
      const validate = this.validatorFor(info.inputSchema);
      if (validate instanceof Error) {
        errors.push(`${at}.role: role ${info.role} publishes an input schema that does not compile`);
        return;
      }
      if (!validate(input)) {
        for (const e of validate.errors ?? []) errors.push(`${at}.input${pointerToPath(e)}: ${describe(e)}`);
        return;
      }
      subtasks.push({
        subtaskId: ids[i] as string,
        role: info.role,
        input,
        ...(dependsOn?.length ? { dependsOn } : {}),
      });
    });
    if (errors.length === 0) {
      const cycle = findCycle(subtasks);
      if (cycle)
        errors.push(
          `subtasks: dependsOn forms a cycle (${cycle.join(' -> ')}); a subtask can only wait for others that do not wait for it`,
        );
    }
    return errors.length ? { ok: false, errors } : { ok: true, subtasks };
  }
}

/** A subtask's `dependsOn`: other subtasks of the plan, by id, each once (itself left out); errors go to `errors`. */
function checkDependsOn(
  raw: unknown,
  self: string,
  ids: readonly string[],
  at: string,
  errors: string[],
): string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) {
    errors.push(`${at}: must be an array of subtask ids such as ["s1"]`);
    return undefined;
  }
  const out: string[] = [];
  raw.forEach((ref: unknown, j) => {
    if (typeof ref !== 'string' || !ids.includes(ref)) {
      errors.push(`${at}.${j}: ${JSON.stringify(ref)} is not a subtask of this plan (${ids.join(', ')})`);
    } else if (ref !== self && !out.includes(ref)) {
      // A subtask naming itself is dropped, not refused: small models write `dependsOn: ["s1"]` on s1
      // itself, and it asks for nothing a plan can mean (the eval found it on every 0.5B plan).
      out.push(ref);
    }
  });
  return out;
}

function pointerToPath(e: ErrorObject): string {
  const parts = e.instancePath.split('/').slice(1);
  const missing = e.keyword === 'required' ? (e.params as { missingProperty?: string }).missingProperty : undefined;
  if (missing) parts.push(missing);
  return parts.map((p) => `.${p.replaceAll('~1', '/').replaceAll('~0', '~')}`).join('');
}

function describe(e: ErrorObject): string {
  return e.keyword === 'required' ? 'is required' : (e.message ?? e.keyword);
}
