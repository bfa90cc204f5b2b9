/**
 * The tenant of every task when auth is off (AUTH=off on loopback, tests), and of tasks written
 * before tenants existed, when one deployment token shared everything.
 */
export const DEFAULT_OWNER = 'default';
