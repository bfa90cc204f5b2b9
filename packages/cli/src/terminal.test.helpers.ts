// What the CLI's integration tests share: the built CLI (dist/main.js) run as a real process,
// in a pseudo-terminal when the test is about what a terminal shows, and a reader of the screen
// that terminal would show. The PTY is Python's pty module (python3 is on every machine that runs
// these tests), which keeps a native npm dependency out. Build first (pnpm build).
// (Named *.test.helpers.ts: vitest does not run it, and the package's files leave it out of dist.)
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  type RunningProcess,
  startProcess,
  stopAll,
  testServices,
  uniquePrefix,
  waitFor,
} from '@flotilla/test-utils';
import { Redis } from 'ioredis';

export const cliDir = fileURLToPath(new URL('..', import.meta.url));
export const main = join(cliDir, 'dist', 'main.js');

/**
 * Runs argv on the slave side of a new pseudo-terminal (120x40) and copies what the terminal
 * receives to stdout, unchanged; exits with the child's exit status.
 */
const PTY = `
import fcntl, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`;

/** Settings from the developer's shell that would change what the CLI does. */
const clean = {
  FLOTILLA_URL: undefined,
  FLOTILLA_API_KEY: undefined,
  FLOTILLA_API_KEY_FILE: undefined,
  NO_COLOR: undefined,
};

export interface RunOptions {
  tty?: boolean;
  env?: Record<string, string | undefined>;
}

/**
 * Starts CLI processes in `cwd()` (read at each run, so a describe block can set it in beforeAll)
 * and keeps them, so `stop()` in an afterEach ends any a failed test left running.
 */
export function cliRunner(cwd: () => string) {
  let procs: RunningProcess[] = [];
  const run = (args: string[], { tty = false, env = {} }: RunOptions = {}) => {
    const options = { cwd: cwd(), env: { ...clean, ...env } };
    const proc = tty
      ? startProcess('python3', ['-c', PTY, process.execPath, main, ...args], options)
      : startProcess(process.execPath, [main, ...args], options);
    procs.push(proc);
    return proc;
  };
  return {
    run,
    /** Runs to the end: exit status, stdout and stderr. */
    exec: async (args: string[], opts: RunOptions = {}) => finished(run(args, opts)),
    stop: async () => {
      await stopAll(procs);
      procs = [];
    },
  };
}

export async function finished(proc: RunningProcess) {
  const code = await proc.exited;
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}

/**
 * The screen a terminal shows after `raw`: text, \r, \n, cursor up (CSI n A) and erase below
 * (CSI J), the sequences the live view uses; colours (CSI m) take no room. Enough to tell a frame
 * redrawn in place from frames appended one after another.
 */
export function screen(raw: string): string[] {
  const rows = [''];
  let r = 0;
  let c = 0;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '\x1b') {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escapes.
      const m = /^\x1b\[([0-9;]*)([A-Za-z])/.exec(raw.slice(i));
      if (!m) continue;
      i += m[0].length - 1;
      if (m[2] === 'A') r = Math.max(0, r - Number(m[1] || 1));
      if (m[2] === 'J') {
        rows[r] = (rows[r] ?? '').slice(0, c);
        rows.length = r + 1;
      }
      continue;
    }
    if (ch === '\r') c = 0;
    else if (ch === '\n') rows[++r] ??= '';
    else {
      const row = (rows[r] ?? '').padEnd(c);
      rows[r] = row.slice(0, c) + ch + row.slice(c + 1);
      c++;
    }
  }
  return rows;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escapes.
export const COLOUR = /\x1b\[[0-9;]*m/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escapes.
export const CURSOR_UP = /\x1b\[\d+A/;
/** A stack trace line: what a user must never see. */
export const STACK_TRACE = /^\s+at /m;

/**
 * An orchestrator process with auth on (the keys in `keysFile`), the offline model and no Chroma, on
 * a private queue prefix of the test Redis: for the key and scope errors a user meets. `stop` also
 * deletes the prefix's keys.
 */
export async function startKeyedOrchestrator(keysFile: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const prefix = uniquePrefix('cli-auth');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const orchestrator = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
    cwd: fileURLToPath(new URL('../../orchestrator', import.meta.url)),
    env: {
      LLM_PROVIDER: 'offline',
      API_KEYS_FILE: keysFile,
      AUTH: undefined,
      HEALTH_HOST: '127.0.0.1',
      PORT: String(port),
      HEALTH_PORT: String(port),
      REDIS_URL: testServices().redisUrl,
      QUEUE_PREFIX: prefix,
      CHROMA_URL: undefined,
      OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
    },
  });
  try {
    await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok, {
      what: 'orchestrator ready',
      timeoutMs: 30_000,
    });
  } catch (err) {
    await stopAll([orchestrator]);
    throw err;
  }
  return {
    url,
    stop: async () => {
      await stopAll([orchestrator]);
      const redis = new Redis(testServices().redisUrl);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    },
  };
}
