import { ExponentialBackoff, type GeneratorFn } from 'cockatiel';

/** Retry delays between attempts of one tool call. */
export interface BackoffOptions {
  /** Cap of the first retry's delay, ms. Default 100. */
  initialDelayMs?: number;
  /** Cap no delay exceeds, ms. Default 2000: a retry must not eat much of a run's wall budget. */
  maxDelayMs?: number;
  /** Source of randomness in [0, 1). Default Math.random; tests inject their own. */
  random?: () => number;
}

/**
 * Full jitter (AWS "Exponential Backoff and Jitter"): each delay is uniform in
 * [0, min(maxDelay, initialDelay * 2^attempt)]. Spreading retries over the whole window is what keeps
 * replicas that failed together from retrying together. cockatiel ships a full-jitter generator,
 * but with Math.random baked in; this one takes the random source.
 */
export function fullJitter(random: () => number = Math.random): GeneratorFn<number> {
  return (attempt = 0, options) => {
    const cap = Math.min(options.maxDelay, options.initialDelay * options.exponent ** attempt);
    return [Math.floor(random() * cap), attempt + 1];
  };
}

/** cockatiel backoff factory with full jitter. */
export function jitteredBackoff({ initialDelayMs = 100, maxDelayMs = 2000, random }: BackoffOptions = {}) {
  return new ExponentialBackoff({
    generator: fullJitter(random),
    initialDelay: initialDelayMs,
    maxDelay: maxDelayMs,
    exponent: 2,
  });
}
