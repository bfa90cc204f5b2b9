import { baseConfigSchema, envField, secret } from '@flotilla/runtime';
import { z } from 'zod';

const MiB = 1024 * 1024;

/**
 * The sandbox's settings, on top of the shared service settings (LOG_LEVEL, HEALTH_HOST,
 * SHUTDOWN_GRACE_MS, ...; it uses no Redis). Each may also come from `<NAME>_FILE`. Defaults:
 *
 * | variable                   | default        | why                                                                  |
 * |----------------------------|----------------|----------------------------------------------------------------------|
 * | SANDBOX_TOKEN(_FILE)       | required       | closed by default: code execution is never open to whoever can connect |
 * | PORT                       | HEALTH_PORT (8080) | one server for the API and the probes                           |
 * | SANDBOX_MAX_CONCURRENT     | 4              | runs at once; the next gets 429 at once (a queue would hide overload)  |
 * | SANDBOX_MAX_TIMEOUT_MS     | 10000          | wall time of a run; short programs, and the coder's tool times out at 30 s |
 * | SANDBOX_MAX_MEMORY_MB      | 256            | per process (RLIMIT_DATA); python and node start in well under 64     |
 * | SANDBOX_MAX_PROCS          | 32             | processes + threads of a run (node alone uses ~8): a fork bomb stops  |
 * | SANDBOX_MAX_OPEN_FILES     | 64             | RLIMIT_NOFILE; enough for an interpreter and a few files              |
 * | SANDBOX_DISK_MB            | 16             | size of the run's /work and of its /tmp (each a private tmpfs)        |
 * | SANDBOX_MAX_FILE_BYTES     | 4194304        | largest file a run may write (RLIMIT_FSIZE)                           |
 * | SANDBOX_MAX_OUTPUT_BYTES   | 65536          | stdout and stderr each; a run writing more is stopped and flagged     |
 * | SANDBOX_MAX_OUT_FILES_BYTES| 262144         | total of the out/ files returned; a model reads them, keep them small |
 * | SANDBOX_MAX_CODE_BYTES     | 100000         | the coder's code.run accepts at most 100000 characters                |
 * | SANDBOX_MAX_STDIN_BYTES    | 1048576        | a program's input                                                     |
 * | SANDBOX_MAX_FILES          | 32             | input files per run                                                   |
 * | SANDBOX_MAX_FILES_BYTES    | 1048576        | all input files together                                              |
 * | SANDBOX_ISOLATION          | auto           | auto picks userns, else root, else (under gVisor) gvisor; see the README's isolation section |
 * | SANDBOX_UID_BASE           | 2000000        | root mode: run slot n runs as uid/gid BASE+n, far from login users (1000-59999), systemd's DynamicUser (61184-65519) and /etc/subuid ranges (100000+) |
 * | SANDBOX_PYTHON             | python3 on /usr/local/bin:/usr/bin:/bin | not the service's PATH: a pyenv shim is a script. In userns mode the run's uid binds it, so it must be readable by any uid; one under /root works in root mode only |
 * | SANDBOX_NODE               | node on that PATH, else this process's node | same                                  |
 */
export const sandboxConfigSchema = baseConfigSchema.extend({
  SANDBOX_TOKEN: secret(z.string().min(16, 'must be at least 16 characters')),
  PORT: envField.port().optional(),
  SANDBOX_MAX_CONCURRENT: envField.positiveInt().default(4),
  SANDBOX_MAX_TIMEOUT_MS: envField
    .positiveInt()
    .refine((n) => n >= 100 && n <= 600_000, 'expected 100 to 600000')
    .default(10_000),
  SANDBOX_MAX_MEMORY_MB: envField
    .positiveInt()
    .refine((n) => n >= 64, 'expected at least 64 (node needs ~48 MiB to start)')
    .default(256),
  SANDBOX_MAX_PROCS: envField
    .positiveInt()
    .refine((n) => n >= 16, 'expected at least 16 (an interpreter has several threads)')
    .default(32),
  SANDBOX_MAX_OPEN_FILES: envField
    .positiveInt()
    .refine((n) => n >= 16, 'expected at least 16')
    .default(64),
  SANDBOX_DISK_MB: envField.positiveInt().default(16),
  SANDBOX_MAX_FILE_BYTES: envField.positiveInt().default(4 * MiB),
  SANDBOX_MAX_OUTPUT_BYTES: envField.positiveInt().default(64 * 1024),
  SANDBOX_MAX_OUT_FILES_BYTES: envField.positiveInt().default(256 * 1024),
  SANDBOX_MAX_CODE_BYTES: envField.positiveInt().default(100_000),
  SANDBOX_MAX_STDIN_BYTES: envField.positiveInt().default(MiB),
  SANDBOX_MAX_FILES: envField.nonNegativeInt().default(32),
  SANDBOX_MAX_FILES_BYTES: envField.positiveInt().default(MiB),
  SANDBOX_ISOLATION: z.enum(['auto', 'userns', 'root', 'gvisor']).default('auto'),
  SANDBOX_UID_BASE: envField
    .positiveInt()
    .refine((n) => n >= 1000 && n < 4_000_000_000, 'expected a uid from 1000 to 3999999999')
    .default(2_000_000),
  SANDBOX_PYTHON: z.string().trim().startsWith('/', 'expected an absolute path').optional(),
  SANDBOX_NODE: z.string().trim().startsWith('/', 'expected an absolute path').optional(),
});
export type SandboxConfig = z.output<typeof sandboxConfigSchema>;
