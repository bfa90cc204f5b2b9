import type { Redis } from 'ioredis';
import { ServiceUnavailableError } from '../errors.js';

/**
 * Admission by Redis memory. Redis runs with `noeviction` (evicting a job key would lose work
 * silently), so at `maxmemory` it refuses writes, and a task already accepted still has events,
 * results and job state to write. New tasks are therefore refused (503, Retry-After) once
 * `used_memory` passes a high-water mark below `maxmemory`; the room above the mark belongs to work
 * already running, and to cancels and the kill switch, which this gate never sees.
 */
export interface MemoryAdmissionOptions {
  /** Fraction of maxmemory above which new tasks are refused (ADMISSION_REDIS_HIGH_WATER, 0.7). */
  highWater: number;
  /**
   * How old a reading may be before the next submission reads INFO again. A burst inside this
   * window is admitted on the last reading; the space above the mark absorbs it.
   */
  maxAgeMs: number;
}

export interface MemoryReading {
  usedBytes: number;
  /** 0 when Redis has no maxmemory: then nothing can be measured against it, and all is admitted. */
  maxBytes: number;
}

/** used_memory and maxmemory from `INFO memory`. */
export function parseMemoryInfo(info: string): MemoryReading {
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  const reading = { usedBytes: field('used_memory'), maxBytes: field('maxmemory') };
  if (!Number.isFinite(reading.usedBytes) || !Number.isFinite(reading.maxBytes))
    throw new Error('INFO memory has no used_memory or maxmemory');
  return reading;
}

export class MemoryAdmission {
  #last: { reading: MemoryReading; at: number } | undefined;
  #pending: Promise<MemoryReading> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly options: MemoryAdmissionOptions,
  ) {}

  /** Resolves when a new task may be accepted; throws ServiceUnavailableError (503) when not. */
  async admit(): Promise<void> {
    const { usedBytes, maxBytes } = await this.reading();
    if (maxBytes === 0) return;
    const ratio = usedBytes / maxBytes;
    if (ratio >= this.options.highWater) {
      throw new ServiceUnavailableError(
        `not accepting new tasks: the task store is ${Math.round(ratio * 100)}% full (limit ${Math.round(this.options.highWater * 100)}%); tasks already accepted continue`,
      );
    }
  }

  /** The last reading if fresh, else one INFO call shared by every submission waiting on it. */
  async reading(): Promise<MemoryReading> {
    const now = Date.now();
    if (this.#last && now - this.#last.at < this.options.maxAgeMs) return this.#last.reading;
    this.#pending ??= this.redis
      .info('memory')
      .then((info) => {
        const reading = parseMemoryInfo(info);
        this.#last = { reading, at: Date.now() };
        return reading;
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }
}
