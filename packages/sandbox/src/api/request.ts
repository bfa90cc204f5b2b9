import { SandboxRunRequest } from '@flotilla/contracts';
import { z } from 'zod';
import type { RunLimits } from '../isolation/command.js';
import { MAIN_FILE } from '../isolation/command.js';

/** The service's caps on a request and the maxima a request may lower (config.ts). */
export interface ServiceLimits {
  /** The most a run may have; also what a request without timeoutMs/memoryMb gets. */
  max: RunLimits;
  maxCodeBytes: number;
  maxStdinBytes: number;
  maxFiles: number;
  maxFilesBytes: number;
}

/** Smallest memory limit a request may ask for: node needs ~48 MiB to start at all. */
export const MIN_MEMORY_MB = 64;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * The request schema with the service's caps: each cap is a zod check on its own field, so a
 * rejection names the field (`code`, `files`, `timeoutMs`).
 */
export function runRequestSchema(limits: ServiceLimits) {
  const { max } = limits;
  return SandboxRunRequest.extend({
    code: SandboxRunRequest.shape.code.refine(
      (s) => bytes(s) <= limits.maxCodeBytes,
      `must be at most ${limits.maxCodeBytes} bytes`,
    ),
    stdin: z
      .string()
      .refine((s) => bytes(s) <= limits.maxStdinBytes, `must be at most ${limits.maxStdinBytes} bytes`)
      .optional(),
    files: SandboxRunRequest.shape.files
      .unwrap()
      .refine((f) => Object.keys(f).length <= limits.maxFiles, `at most ${limits.maxFiles} files`)
      .refine(
        (f) => Object.values(f).reduce((n, c) => n + bytes(c), 0) <= limits.maxFilesBytes,
        `must be at most ${limits.maxFilesBytes} bytes in all`,
      )
      .refine(
        (f) => !Object.keys(f).some((name) => name === MAIN_FILE.python || name === MAIN_FILE.javascript),
        `must not name ${MAIN_FILE.python} or ${MAIN_FILE.javascript} (the program's own file)`,
      )
      .refine((f) => !hasFileDirClash(Object.keys(f)), 'a path is both a file and a directory')
      .optional(),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(max.timeoutMs, `must be at most ${max.timeoutMs} (the server's maximum)`)
      .optional(),
    memoryMb: z
      .number()
      .int()
      .min(MIN_MEMORY_MB)
      .max(max.memoryMb, `must be at most ${max.memoryMb} (the server's maximum)`)
      .optional(),
  });
}
export type RunRequest = z.output<ReturnType<typeof runRequestSchema>>;

/** `a` and `a/b` both given: one would have to be a file and a directory at once. */
function hasFileDirClash(names: string[]): boolean {
  const set = new Set(names);
  return names.some((n) => {
    for (let i = n.indexOf('/'); i !== -1; i = n.indexOf('/', i + 1)) if (set.has(n.slice(0, i))) return true;
    return false;
  });
}

/** A request's limits: what it asked for, never above the service's maxima. */
export function runLimits(request: Pick<RunRequest, 'timeoutMs' | 'memoryMb'>, max: RunLimits): RunLimits {
  return {
    ...max,
    timeoutMs: Math.min(request.timeoutMs ?? max.timeoutMs, max.timeoutMs),
    memoryMb: Math.min(request.memoryMb ?? max.memoryMb, max.memoryMb),
  };
}
