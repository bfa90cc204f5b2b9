import { FlotillaError } from '@flotilla/runtime';

/** No valid API key on a dashboard request (neither `Bearer <key>` nor Basic auth with it as password). */
export class DashboardUnauthorizedError extends FlotillaError {
  readonly statusCode = 401;
  constructor() {
    super(
      'FLOTILLA_DASHBOARD_UNAUTHORIZED',
      'an admin API key is required (Bearer, or Basic with the key as password)',
    );
  }
}

/** A valid API key, but of the tasks scope: the queues are the operator's (admin keys only). */
export class DashboardForbiddenError extends FlotillaError {
  readonly statusCode = 403;
  constructor() {
    super('FLOTILLA_DASHBOARD_FORBIDDEN', 'this key has the tasks scope; the dashboard needs an admin key');
  }
}
