import { z } from 'zod';

/** What the sandbox service runs. */
export const SandboxLanguage = z.enum(['python', 'javascript']);
export type SandboxLanguage = z.infer<typeof SandboxLanguage>;

/**
 * A file's path inside the run's directory: relative, `/`-separated, no `.`/`..` segments, no
 * hidden files at the top (`.x`), plain characters only. What reaches the sandbox's mount table
 * must not be able to name anything outside the run's own directory.
 */
export const SandboxFileName = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^(?!\.)[A-Za-z0-9_+=@,-][A-Za-z0-9_.+=@,-]*(\/[A-Za-z0-9_+=@,-][A-Za-z0-9_.+=@,-]*){0,3}$/,
    'a relative path of at most 4 segments of letters, digits and _ . + = @ , - (no segment starting with a dot)',
  )
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'must not contain . or .. segments');

/**
 * POST /v1/run. The absolute shape; the service tightens each cap with its own configured
 * maxima, and requested limits (`timeoutMs`, `memoryMb`) can only lower the service's.
 */
export const SandboxRunRequest = z.strictObject({
  language: SandboxLanguage,
  /** The program, saved as `main.py` or `main.js` (CommonJS) in the run's directory. */
  code: z.string().min(1),
  /** Given to the program's standard input; without it, stdin is empty. */
  stdin: z.string().optional(),
  /** Extra input files, by path relative to the run's directory. */
  files: z.record(SandboxFileName, z.string()).optional(),
  /** Wall-time limit for the whole run; at most the service's maximum (its default). */
  timeoutMs: z.number().int().positive().optional(),
  /** Memory limit per process, in MiB; at most the service's maximum (its default). */
  memoryMb: z.number().int().positive().optional(),
});
export type SandboxRunRequest = z.infer<typeof SandboxRunRequest>;

/** What a run did. Stop reasons are data: a run that timed out is a 200 with `timedOut: true`. */
export const SandboxRunResult = z.object({
  /** Standard output, up to the service's output cap (UTF-8; a cut character becomes U+FFFD). */
  stdout: z.string(),
  stderr: z.string(),
  /** The program's exit status; 128 + n when a signal n ended it (137: killed). */
  exitCode: z.number().int(),
  /** The run hit its wall-time or CPU-time limit and was killed. */
  timedOut: z.boolean(),
  /** The run ran out of its memory limit. */
  memoryExceeded: z.boolean(),
  /** stdout, stderr or the returned files hit their cap: the run was stopped and what it wrote was cut. */
  outputTruncated: z.boolean(),
  /** Wall time of the run, from spawn to exit. */
  durationMs: z.number().nonnegative(),
  /** Regular files the run left in `out/`, by path relative to `out/`, within the service's caps. */
  files: z.record(z.string(), z.string()).optional(),
});
export type SandboxRunResult = z.infer<typeof SandboxRunResult>;
