export { type FlotillaMetrics, getMetrics } from './metrics.js';
