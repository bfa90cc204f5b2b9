import type { ApiClient } from '../client.js';
import { PLAIN, type Style, styleFor } from '../style.js';

/** What every task command is handed: the API, where to write, and how. */
export interface CommandContext {
  client: ApiClient;
  /** stdout: the result (the only thing on it under --json). */
  out: NodeJS.WriteStream;
  json: boolean;
  style: Style;
}

export function commandContext(client: ApiClient, json: boolean, out: NodeJS.WriteStream = process.stdout) {
  return { client, out, json, style: json ? PLAIN : styleFor(out) } satisfies CommandContext;
}

export const print = (ctx: CommandContext, lines: string | string[]) => {
  for (const line of typeof lines === 'string' ? [lines] : lines) ctx.out.write(`${line}\n`);
};

/** --json output: the API's own body, indented, nothing else on stdout. */
export const printJson = (ctx: CommandContext, value: unknown) => ctx.out.write(`${JSON.stringify(value, null, 2)}\n`);
