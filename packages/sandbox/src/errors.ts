import { FlotillaError, ProblemError } from '@flotilla/runtime';

// The problem documents every flotilla HTTP API shares live in the runtime; these are the sandbox's own.
export { BadRequestError, type FieldError, InvalidBodyError, ProblemError, UnauthorizedError } from '@flotilla/runtime';

/** 429: every run slot is busy; the caller should retry shortly. */
export class SandboxBusyError extends ProblemError {
  constructor(slots: number) {
    super('FLOTILLA_SANDBOX_BUSY', 429, 'Too many requests', `all ${slots} run slots are busy; retry shortly`, {
      headers: { 'retry-after': '1' },
    });
  }
}

/**
 * The host cannot isolate runs as configured (a missing tool, user namespaces off, an interpreter
 * the run's uid cannot read). The service does not start: it never runs code unisolated.
 */
export class SandboxSetupError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOTILLA_SANDBOX_SETUP', message, options);
  }
}
