import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { registerSecretValue } from '../logger/index.js';
import { ConfigError, type ConfigProblem, formatProblem } from './errors.js';
import { type SecretKind, secretKind, secretParts } from './secret.js';

/** Exit status for a configuration error (sysexits.h EX_CONFIG): the orchestrator must not restart-loop blindly. */
export const EX_CONFIG = 78;

export interface LoadConfigOptions<C = unknown> {
  /** Where variables come from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Problems a schema cannot see alone, found in the parsed config (settings that only work
   * together, such as an LLM provider and its key). Reported with the schema's, the same way.
   */
  check?: (config: C) => readonly ConfigProblem[];
}

type Raw = { value: string; source: 'env' | 'file' };

/** Removes the one newline editors and `echo` leave at the end of a secret file. */
const trimTrailingNewline = (s: string) => s.replace(/\r?\n$/, '');

/**
 * Reads the settings `schema` names from the environment. For each key K, `K_FILE` names a
 * file holding the value instead (Docker/Kubernetes secrets under /run/secrets); setting
 * both is an error. Empty values count as unset, so defaults apply. Secrets (see `secret()`)
 * are registered with the logger's redactor and never appear in error messages.
 * @throws ConfigError listing every problem, one line each.
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  { env = process.env, check }: LoadConfigOptions<z.output<S>> = {},
): z.output<S> {
  const problems: ConfigProblem[] = [];
  const raw = new Map<string, Raw>();
  const kinds = new Map<string, SecretKind>();

  for (const [key, field] of Object.entries(schema.shape as Record<string, z.core.$ZodType>)) {
    const kind = secretKind(field);
    if (kind) kinds.set(key, kind);
    const fileVar = `${key}_FILE`;
    const direct = nonEmpty(env[key]);
    const path = nonEmpty(env[fileVar]);
    if (direct !== undefined && path !== undefined) {
      problems.push({ variable: key, message: `set either ${key} or ${fileVar}, not both` });
      continue;
    }
    if (path !== undefined) {
      try {
        const value = nonEmpty(trimTrailingNewline(readFileSync(path, 'utf8')));
        if (value !== undefined) raw.set(key, { value, source: 'file' });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        problems.push({ variable: fileVar, message: `cannot read ${path} (${code})` });
      }
    } else if (direct !== undefined) {
      raw.set(key, { value: direct, source: 'env' });
    }
  }

  // Secrets are registered before validation: a failing value must not leak through a later log line either.
  for (const [key, kind] of kinds) {
    const r = raw.get(key);
    if (r) for (const part of secretParts(kind, r.value)) registerSecretValue(part);
  }

  const input = Object.fromEntries([...raw].map(([key, r]) => [key, r.value]));
  const result = schema.safeParse(input, { error: describeIssue });
  if (!result.success) {
    const reported = new Set(problems.map((p) => p.variable));
    for (const issue of result.error.issues) {
      const variable = String(issue.path[0] ?? '(config)');
      if (reported.has(variable)) continue; // first problem per variable: the one to fix first
      reported.add(variable);
      const r = raw.get(variable);
      let message = issue.message;
      if (r === undefined) message = `required, but not set (set ${variable} or ${variable}_FILE)`;
      else if (kinds.has(variable)) message += ' (secret, value hidden)';
      else message += `, got ${quote(r.value)}`;
      problems.push({ variable, message });
    }
  } else if (problems.length === 0 && check) problems.push(...check(result.data as z.output<S>));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(result.data) as z.output<S>;
}

export interface LoadConfigOrExitOptions<C = unknown> extends LoadConfigOptions<C> {
  /** Called with 78 on a config error. Default process.exit. */
  exit?: (code: number) => never;
  /** Where problem lines go. Default process.stderr. */
  stderr?: { write(line: string): unknown };
}

/**
 * `loadConfig` for a service's entry point: on a ConfigError it writes one
 * `config error: VARIABLE: message` line per problem to stderr — no stack trace, the
 * operator needs the variable, not our call stack — and exits with 78 (EX_CONFIG).
 * Any other error is a bug and propagates.
 */
export function loadConfigOrExit<S extends z.ZodObject>(
  schema: S,
  options: LoadConfigOrExitOptions<z.output<S>> = {},
): z.output<S> {
  const { exit = process.exit, stderr = process.stderr, ...rest } = options;
  const outcome = checkConfig(schema, rest);
  if (outcome.ok) return outcome.config;
  stderr.write(outcome.lines.join(''));
  return exit(EX_CONFIG);
}

/** What a service's start makes of an environment: its config, or the lines it writes before exiting 78. */
export type ConfigOutcome<C> = { ok: true; config: C } | { ok: false; lines: string[] };

/** `loadConfig` without throwing a ConfigError: loadConfigOrExit's decision, and --check-config-batch's. */
export function checkConfig<S extends z.ZodObject>(
  schema: S,
  options: LoadConfigOptions<z.output<S>> = {},
): ConfigOutcome<z.output<S>> {
  try {
    return { ok: true, config: loadConfig(schema, options) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { ok: false, lines: err.problems.map((p) => `config error: ${formatProblem(p)}\n`) };
  }
}

const nonEmpty = (s: string | undefined) => (s === undefined || s === '' ? undefined : s);

const quote = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/**
 * Messages for zod's built-in checks, phrased for someone editing an env file. Schema-level
 * messages (envField's, a service's own) take precedence over these.
 */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'number' || issue.expected === 'nan') return 'expected a number';
      if (issue.expected === 'int') return 'expected an integer';
      if (issue.expected === 'boolean') return 'expected true or false';
      return `expected ${issue.expected}`;
    case 'too_small': {
      const min = String(issue.minimum);
      if (issue.origin === 'string')
        return issue.minimum === 1 ? 'must not be empty' : `expected at least ${min} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') return `expected at least ${min} items`;
      if (issue.minimum === 0 && !issue.inclusive) return 'expected a positive number';
      return `expected a number ${issue.inclusive ? '>=' : '>'} ${min}`;
    }
    case 'too_big': {
      const max = String(issue.maximum);
      if (issue.origin === 'string') return `expected at most ${max} characters`;
      if (issue.origin === 'array' || issue.origin === 'set') return `expected at most ${max} items`;
      return `expected a number ${issue.inclusive ? '<=' : '<'} ${max}`;
    }
    case 'invalid_format':
      if (issue.format === 'url') return 'expected a URL';
      if (issue.format === 'regex')
        return `expected to match ${String((issue as { pattern?: unknown }).pattern ?? 'the pattern')}`;
      return `expected a valid ${issue.format}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return undefined;
  }
}
