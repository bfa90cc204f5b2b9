import { redisCheck, registerHealthRoutes, startService } from '@flotilla/runtime';
import { ApiKeyRing, readApiKeysFile, watchApiKeysFile } from '@flotilla/runtime/auth';
import { ApprovalsClient } from './approvals-client.js';
import { buildDashboard } from './board.js';
import { dashboardConfigProblems, dashboardConfigSchema } from './config.js';

const service = startService(dashboardConfigSchema, { name: 'dashboard', check: dashboardConfigProblems });
const { config, log, lifecycle } = service;
const keys = new ApiKeyRing(readApiKeysFile(config.API_KEYS_FILE));
const watcher = watchApiKeysFile(config.API_KEYS_FILE, keys, { intervalMs: config.API_KEYS_RELOAD_MS, log });
lifecycle.onShutdown('keys watcher', () => watcher.close(), 'stop-intake');
// Fail fast: a board request gets a 5xx while Redis is away instead of hanging on it.
const redis = service.redis('commands');

// Off unless both settings are given (the config check refuses one alone); the page says so when off.
const approvals =
  config.ORCHESTRATOR_URL && config.DASHBOARD_API_KEY
    ? new ApprovalsClient({ url: config.ORCHESTRATOR_URL, key: config.DASHBOARD_API_KEY })
    : undefined;

const dashboard = await buildDashboard({
  approvals,
  connection: redis,
  prefix: config.QUEUE_PREFIX,
  keys,
  basePath: config.DASHBOARD_BASE_PATH,
  readOnly: config.DASHBOARD_READ_ONLY,
  log,
  registerHealth: (app) => registerHealthRoutes(app, { checks: [redisCheck(redis)], lifecycle }),
});

// Workers register their role when they start, possibly after the dashboard: look again now and then.
const refresh = () =>
  dashboard.refresh().catch((err: Error) => log.warn({ err: { message: err.message } }, 'queue refresh failed'));
const timer = setInterval(refresh, config.DASHBOARD_REFRESH_MS);
timer.unref();

lifecycle.onShutdown('refresh timer', () => clearInterval(timer), 'stop-intake');
lifecycle.onShutdown('http server', () => dashboard.app.close(), 'stop-intake');
lifecycle.onShutdown('queues', () => dashboard.close(), 'close');

const queues = await dashboard.refresh();
const port = config.PORT ?? config.HEALTH_PORT;
await dashboard.app.listen({ port, host: config.HEALTH_HOST });
service.ready();
log.info(
  {
    port,
    prefix: config.QUEUE_PREFIX,
    basePath: config.DASHBOARD_BASE_PATH,
    readOnly: config.DASHBOARD_READ_ONLY,
    queues,
    approvals: approvals ? approvals.url : 'off (ORCHESTRATOR_URL unset)',
  },
  'dashboard ready',
);
