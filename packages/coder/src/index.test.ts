import { createLogger } from '@flotilla/runtime';
import { describe, expect, it } from 'vitest';
import { coder } from './index.js';
import { CoderInput } from './schemas.js';

const deps = (env: NodeJS.ProcessEnv) => ({
  env,
  memory: undefined,
  log: createLogger({ service: 'coder', level: 'silent' }),
});

describe('the coder worker', () => {
  it('builds code.run from its settings', () => {
    const tools = typeof coder.tools === 'function' ? coder.tools(deps({ SANDBOX_TIMEOUT_MS: '4500' })) : [];
    expect(tools.map((t) => [t.name, t.timeoutMs])).toEqual([['code.run', 4500]]);
  });

  it('runs one job at a time and writes JavaScript unless told otherwise', () => {
    expect(coder.concurrency).toBe(1);
    expect(CoderInput.parse({ task: 'count to 3' })).toEqual({ task: 'count to 3', language: 'javascript' });
    expect(CoderInput.safeParse({ task: '' }).success).toBe(false);
  });
});
