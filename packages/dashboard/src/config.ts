import { baseConfigSchema, envField, secret } from '@flotilla/runtime';
import { z } from 'zod';

/**
 * The dashboard's settings, on top of the shared service settings (REDIS_URL, QUEUE_PREFIX,
 * HEALTH_PORT, LOG_LEVEL ...). Defaults:
 *
 * | variable             | default | why                                                                        |
 * |----------------------|---------|----------------------------------------------------------------------------|
 * | API_TOKEN(_FILE)     | (none)  | required: job payloads hold goals and results, never served without auth   |
 * | PORT                 | HEALTH_PORT (8080) | one server for the board and the probes                         |
 * | DASHBOARD_BASE_PATH  | /       | where the board lives; set it when a proxy serves it under a path          |
 * | DASHBOARD_READ_ONLY  | true    | the token lets a client submit tasks; retrying, deleting or emptying       |
 * |                      |         | queues is an operator's act, so it is switched on deliberately             |
 * | DASHBOARD_REFRESH_MS | 15000   | how often newly registered roles' queues are picked up                     |
 */
export const dashboardConfigSchema = baseConfigSchema.extend({
  API_TOKEN: secret(z.string().min(16, 'must be at least 16 characters')),
  PORT: envField.port().optional(),
  DASHBOARD_BASE_PATH: z
    .string()
    .trim()
    .regex(/^\/([\w.-]+\/?)*$/, 'expected an absolute path such as / or /queues')
    .default('/'),
  DASHBOARD_READ_ONLY: envField.boolean().default(true),
  DASHBOARD_REFRESH_MS: envField.positiveInt().default(15_000),
});
export type DashboardConfig = z.output<typeof dashboardConfigSchema>;
