import { z } from 'zod';

/**
 * Who a task belongs to: the name of the API key that submitted it (one key, one tenant). It is
 * part of Redis key names (`tasks-by-owner:<tenant>`, `task-key:<tenant>:<key>`), so it has no ':'
 * and no spaces; letters, digits and `. _ -`, starting with a letter or digit.
 */
export const TenantId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'expected 1-64 letters, digits, . _ or -, starting with a letter or digit',
  );
export type TenantId = z.infer<typeof TenantId>;
