import { FlotillaError } from '@flotilla/runtime';

/** No valid API token on a dashboard request (neither `Bearer <token>` nor Basic auth with it as password). */
export class DashboardUnauthorizedError extends FlotillaError {
  readonly statusCode = 401;
  constructor() {
    super(
      'FLOTILLA_DASHBOARD_UNAUTHORIZED',
      'a valid API token is required (Bearer, or Basic with the token as password)',
    );
  }
}
