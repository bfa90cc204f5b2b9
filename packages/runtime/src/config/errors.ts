import { FlotillaError } from '../errors.js';

/** One thing wrong with the environment, named by the variable an operator must fix. */
export interface ConfigProblem {
  /** The variable to fix: `AGENT_MAX_STEPS`, or `API_TOKEN_FILE` when its file is the problem. */
  variable: string;
  /** What is wrong, never including a secret's value. */
  message: string;
}

/** The environment does not satisfy a service's config schema. Every problem is listed, not just the first. */
export class ConfigError extends FlotillaError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super('FLOTILLA_CONFIG', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

/** `VARIABLE: message`, the line an operator reads. */
export const formatProblem = (p: ConfigProblem): string => `${p.variable}: ${p.message}`;
