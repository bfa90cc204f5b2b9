import { baseConfigSchema, type ConfigProblem, envField, secret } from '@flotilla/runtime';
import { apiKeysFileProblems } from '@flotilla/runtime/auth';
import { z } from 'zod';

/**
 * The dashboard's settings, on top of the shared service settings (REDIS_URL, QUEUE_PREFIX,
 * HEALTH_PORT, LOG_LEVEL ...). Defaults:
 *
 * | variable             | default | why                                                                        |
 * |----------------------|---------|----------------------------------------------------------------------------|
 * | API_KEYS_FILE        | (none)  | required, the orchestrator's keys file: job payloads hold every tenant's   |
 * |                      |         | goals and results, so only its admin keys open the board                   |
 * | API_KEYS_RELOAD_MS   | 2000    | a revoked key stops working within this, without a restart                 |
 * | PORT                 | HEALTH_PORT (8080) | one server for the board and the probes                         |
 * | DASHBOARD_BASE_PATH  | /       | where the board lives; set it when a proxy serves it under a path          |
 * | DASHBOARD_READ_ONLY  | true    | retrying, deleting or emptying queues changes every tenant's work, so it   |
 * |                      |         | is switched on deliberately                                                |
 * | DASHBOARD_REFRESH_MS | 15000   | how often newly registered roles' queues are picked up                     |
 * | ORCHESTRATOR_URL     | (none)  | where the approvals panel decides; unset leaves the panel off (it says so) |
 * | DASHBOARD_API_KEY    | (none)  | an admin API key for those calls, from DASHBOARD_API_KEY_FILE in Compose;  |
 * |                      |         | required with ORCHESTRATOR_URL, never logged                               |
 */
export const dashboardConfigSchema = baseConfigSchema.extend({
  // A path, not a secret: the file holds only hashes of the keys.
  API_KEYS_FILE: z.string().trim().min(1),
  API_KEYS_RELOAD_MS: envField.positiveInt().default(2_000),
  PORT: envField.port().optional(),
  DASHBOARD_BASE_PATH: z
    .string()
    .trim()
    .regex(/^\/([\w.-]+\/?)*$/, 'expected an absolute path such as / or /queues')
    .default('/'),
  DASHBOARD_READ_ONLY: envField.boolean().default(true),
  DASHBOARD_REFRESH_MS: envField.positiveInt().default(15_000),
  ORCHESTRATOR_URL: envField.url(['http', 'https']).optional(),
  DASHBOARD_API_KEY: secret(
    z.string().trim().min(20, 'expected an API key (pnpm -s keys add dashboard --admin)'),
  ).optional(),
});
export type DashboardConfig = z.output<typeof dashboardConfigSchema>;

/**
 * The keys file must be usable at start (exit 78 naming API_KEYS_FILE): empty, malformed or example
 * files are refused. The approvals panel needs both its settings or neither: one alone is a mistake.
 */
export const dashboardConfigProblems = (config: DashboardConfig): ConfigProblem[] => [
  ...apiKeysFileProblems(config.API_KEYS_FILE, 'API_KEYS_FILE'),
  ...(config.ORCHESTRATOR_URL && !config.DASHBOARD_API_KEY
    ? [
        {
          variable: 'DASHBOARD_API_KEY_FILE',
          message:
            'required with ORCHESTRATOR_URL: a file holding an admin API key (pnpm -s keys add dashboard --admin > compose/secrets/dashboard_api_key)',
        },
      ]
    : []),
  ...(config.DASHBOARD_API_KEY && !config.ORCHESTRATOR_URL
    ? [
        {
          variable: 'ORCHESTRATOR_URL',
          message: 'required with DASHBOARD_API_KEY_FILE: where the orchestrator’s API is',
        },
      ]
    : []),
];
