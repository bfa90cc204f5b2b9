export { chromaCheck, type ReadinessCheck, redisCheck } from './checks.js';
export { type HealthRoutesOptions, type NotReadyReason, registerHealthRoutes } from './routes.js';
export { LivezBody, ReadyzBody, StartupzBody } from './schemas.js';
export {
  buildHealthServer,
  createHealthServer,
  type HealthApp,
  type HealthServer,
  type HealthServerOptions,
} from './server.js';
