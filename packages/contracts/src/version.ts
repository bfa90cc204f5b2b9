import { z } from 'zod';

/**
 * Wire version of every message. Readers accept every version they know, so old and new
 * workers can consume the same queue during a rollout; writers always send the newest.
 */
export const CONTRACT_VERSION = 1 as const;

export const contractVersion = z
  .literal([CONTRACT_VERSION])
  .default(CONTRACT_VERSION)
  .describe('Contract version; readers accept every version they know');
