import {
  createLifecycle,
  createLogger,
  loadConfigOrExit,
  redisCheck,
  registerHealthRoutes,
  shutdownTelemetry,
} from '@flotilla/runtime';
import { Redis } from 'ioredis';
import { buildDashboard } from './board.js';
import { dashboardConfigSchema } from './config.js';

const config = loadConfigOrExit(dashboardConfigSchema);
const log = createLogger({ service: config.SERVICE_NAME ?? 'dashboard', level: config.LOG_LEVEL });
const lifecycle = createLifecycle({ log, graceMs: config.SHUTDOWN_GRACE_MS });

// Fail fast: a board request gets a 5xx while Redis is away instead of hanging on it.
const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
redis.on('error', (err) => log.warn({ err: { message: err.message } }, 'redis connection error'));

const dashboard = await buildDashboard({
  connection: redis,
  prefix: config.QUEUE_PREFIX,
  apiToken: config.API_TOKEN,
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
lifecycle.onShutdown('redis', () => redis.quit(), 'close');
lifecycle.onShutdown('telemetry', () => shutdownTelemetry(), 'flush');
lifecycle.installSignalHandlers();

const queues = await dashboard.refresh();
const port = config.PORT ?? config.HEALTH_PORT;
await dashboard.app.listen({ port, host: config.HEALTH_HOST });
lifecycle.markReady();
log.info(
  {
    port,
    prefix: config.QUEUE_PREFIX,
    basePath: config.DASHBOARD_BASE_PATH,
    readOnly: config.DASHBOARD_READ_ONLY,
    queues,
  },
  'dashboard ready',
);
