import { FlotillaError } from '../errors.js';

/** An embedding service failed or answered something unusable. */
export class EmbeddingError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOTILLA_MEMORY_EMBEDDING', message, options);
  }
}

/** MEMORY_EMBEDDING=default needs the optional @chroma-core/default-embed package, which is not installed. */
export class EmbeddingUnavailableError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOTILLA_MEMORY_EMBEDDING_UNAVAILABLE', message, options);
  }
}

/**
 * Chroma refused or failed a memory operation; `operation` says which (add, query, cleanup, ...).
 * `retryable` when Chroma was unreachable, rate-limited or failed on its side (5xx): the tool
 * gateway and BullMQ then try again instead of ending the run.
 */
export class MemoryError extends FlotillaError {
  readonly operation: string;
  readonly retryable: boolean;

  constructor(operation: string, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super('FLOTILLA_MEMORY', message, options);
    this.operation = operation;
    this.retryable = options?.retryable ?? false;
  }
}
