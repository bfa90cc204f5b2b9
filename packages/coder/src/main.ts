import { runWorker } from '@flotilla/runtime/worker';
import { coder } from './index.js';

// code.run is allowed by default only where a sandbox is configured (the dev mesh sets SANDBOX_URL;
// Compose does not yet, having no sandbox service): without one the coder reports policy_denied
// instead of failing at a missing URL. An operator's own TOOLS_ALLOWLIST always wins.
const hasSandbox = Boolean(process.env.SANDBOX_URL || process.env.SANDBOX_URL_FILE);
process.env.TOOLS_ALLOWLIST ??= hasSandbox ? 'memory.*,code.run' : 'memory.*';

await runWorker(coder);
