export { chromaCheck, type ReadinessCheck, redisCheck, workerRunningCheck } from './checks.js';
export { type HealthRoutesOptions, type NotReadyReason, registerHealthRoutes } from './routes.js';
export { LivezBody, ReadyzBody, StartupzBody } from './schemas.js';
export {
  createHealthServer,
  type HealthApp,
  type HealthServer,
  type HealthServerOptions,
} from './server.js';
