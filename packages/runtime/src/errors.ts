/**
 * Base of every error flotilla throws on purpose: a stable `code` callers can switch on
 * (like fastify's FST_ERR_* codes), and the original error kept as `cause`.
 */
export class FlotillaError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
