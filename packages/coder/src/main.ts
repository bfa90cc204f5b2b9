import { runWorker } from '@flotilla/runtime/worker';
import { coder } from './index.js';

// Until the sandbox service exists, code.run stays off the allowlist unless an operator puts it
// there, so the coder reports policy_denied instead of failing at a missing URL.
process.env.TOOLS_ALLOWLIST ??= 'memory.*';

await runWorker(coder);
