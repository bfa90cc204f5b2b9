import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@flotilla/runtime';
import { formatApiKeyLine, generateApiKey } from '@flotilla/runtime/auth';
import { afterAll, describe, expect, it } from 'vitest';
import { dashboardConfigProblems, dashboardConfigSchema } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'dashboard-config-'));
const keysFile = join(dir, 'api_keys');
writeFileSync(keysFile, `${formatApiKeyLine('ops', 'admin', generateApiKey())}\n`);
const keyFile = join(dir, 'dashboard_api_key');
const key = generateApiKey();
writeFileSync(keyFile, `${key}\n`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const problems = (env: Record<string, string>) =>
  dashboardConfigProblems(loadConfig(dashboardConfigSchema, { env: { API_KEYS_FILE: keysFile, ...env } }));

describe('dashboard config: the approvals panel', () => {
  it('is off without ORCHESTRATOR_URL, and on with it and the key file', () => {
    expect(problems({})).toEqual([]);
    const config = loadConfig(dashboardConfigSchema, {
      env: { API_KEYS_FILE: keysFile, ORCHESTRATOR_URL: 'http://orchestrator:8080', DASHBOARD_API_KEY_FILE: keyFile },
    });
    expect(config.DASHBOARD_API_KEY).toBe(key);
    expect(dashboardConfigProblems(config)).toEqual([]);
  });

  it('names the missing half when only one of the two is set', () => {
    expect(problems({ ORCHESTRATOR_URL: 'http://orchestrator:8080' })).toEqual([
      { variable: 'DASHBOARD_API_KEY_FILE', message: expect.stringContaining('required with ORCHESTRATOR_URL') },
    ]);
    expect(problems({ DASHBOARD_API_KEY_FILE: keyFile })).toEqual([
      { variable: 'ORCHESTRATOR_URL', message: expect.stringContaining('required with DASHBOARD_API_KEY_FILE') },
    ]);
  });

  it('refuses an ORCHESTRATOR_URL that is not http(s), naming it and not echoing the key', () => {
    let message = '';
    try {
      loadConfig(dashboardConfigSchema, {
        env: { API_KEYS_FILE: keysFile, ORCHESTRATOR_URL: 'orchestrator:8080', DASHBOARD_API_KEY_FILE: keyFile },
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/ORCHESTRATOR_URL/);
    expect(message).not.toContain(key);
  });
});
