import { runWorker } from '@flotilla/runtime/worker';
import { coder } from './index.js';

// code.run is allowed by default only where a sandbox is configured (Compose and the dev mesh set
// SANDBOX_URL): without one the coder reports policy_denied
// instead of failing at a missing URL. An operator's own TOOLS_ALLOWLIST always wins.
const hasSandbox = Boolean(process.env.SANDBOX_URL || process.env.SANDBOX_URL_FILE);
process.env.TOOLS_ALLOWLIST ??= hasSandbox ? 'memory.*,code.run' : 'memory.*';

await runWorker(coder);
