// A real headless Chromium for the dashboard's page tests, driven over the Chrome DevTools Protocol
// (a WebSocket; undici's client, as Node 20 has none built in). Small on purpose: navigate, run a
// script in the page, wait for the next page load, take a screenshot. Debian's `chromium` package
// (apt-get install chromium); CHROMIUM names another binary.
// (Named *.test.helpers.ts: vitest does not run it, and the package's files leave it out of dist.)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'undici';

export const CHROMIUM = process.env.CHROMIUM ?? 'chromium';

export function chromiumMissing(): string | undefined {
  const probe = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' });
  return probe.status === 0
    ? undefined
    : `${CHROMIUM} is not installed (apt-get install chromium, or set CHROMIUM to a Chromium binary)`;
}

export interface Page {
  /** Loads `url` and resolves once its load event fired. */
  goto(url: string): Promise<void>;
  /** The value of a JavaScript expression in the page (JSON-serialisable results only). */
  evaluate<T>(expression: string): Promise<T>;
  /** Runs `action` (e.g. a click that submits a form) and resolves once the next page has loaded. */
  navigation(action: () => Promise<unknown>): Promise<void>;
  /** A PNG of the viewport, written to `path`. */
  screenshot(path: string): Promise<Buffer>;
}

export interface Browser {
  page: Page;
  close(): Promise<void>;
}

/**
 * Starts Chromium headless on a loopback debugging port, opens one tab and sends `headers` with every
 * request it makes (a browser's Basic auth, without the prompt). --no-sandbox: tests run as root in
 * containers, where Chromium's sandbox cannot start; the pages it loads are the test's own.
 */
export async function startBrowser(headers: Record<string, string> = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'flotilla-chromium-'));
  const child = spawn(
    CHROMIUM,
    [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--remote-debugging-address=127.0.0.1',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      '--window-size=1280,800',
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const stopped = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    child.kill('SIGTERM');
    await stopped;
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not start: ${err.slice(-2000)}`)), 30_000);
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
      child.once('exit', (code) => reject(new Error(`chromium exited with ${code}: ${err.slice(-2000)}`)));
    });
    const port = new URL(endpoint).port;
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      type: string;
      webSocketDebuggerUrl: string;
    }[];
    const target = targets.find((t) => t.type === 'page');
    if (!target) throw new Error('chromium opened no tab');
    const page = await connect(target.webSocketDebuggerUrl);
    await page.send('Page.enable');
    await page.send('Network.enable');
    await page.send('Network.setExtraHTTPHeaders', { headers });
    return {
      page: page.api,
      close: async () => {
        page.close();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

async function connect(url: string) {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true });
  });
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(method: string) => void>();
  ws.addEventListener('message', (event) => {
    const msg = JSON.parse(String(event.data)) as {
      id?: number;
      method?: string;
      result?: unknown;
      error?: { message: string };
    };
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result);
    } else if (msg.method) for (const l of listeners) l(msg.method);
  });
  const send = <T = unknown>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const loaded = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the page did not load within 15 s')), 15_000);
      const l = (method: string) => {
        if (method !== 'Page.loadEventFired') return;
        clearTimeout(timer);
        listeners.delete(l);
        resolve();
      };
      listeners.add(l);
    });
  const api: Page = {
    async goto(target) {
      const load = loaded();
      await send('Page.navigate', { url: target });
      await load;
    },
    async evaluate<T>(expression: string) {
      const r = await send<{ result: { value: T }; exceptionDetails?: { text: string } }>('Runtime.evaluate', {
        expression,
        returnByValue: true,
      });
      if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.text}`);
      return r.result.value;
    },
    async navigation(action) {
      const load = loaded();
      await action();
      await load;
    },
    async screenshot(path) {
      const { data } = await send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
      const png = Buffer.from(data, 'base64');
      writeFileSync(path, png);
      return png;
    },
  };
  return { api, send, close: () => ws.close() };
}
