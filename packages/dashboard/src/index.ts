export { presentedToken, tokenAuth } from './auth.js';
export { buildDashboard, type Dashboard, type DashboardOptions } from './board.js';
export { type DashboardConfig, dashboardConfigSchema } from './config.js';
export { DashboardUnauthorizedError } from './errors.js';
export { flotillaQueueNames } from './queues.js';
