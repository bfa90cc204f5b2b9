export { type BaseConfig, baseConfigSchema, type ClusterNode, redisClusterProblems } from './base.js';
export { ConfigError, type ConfigProblem } from './errors.js';
export { envField } from './fields.js';
export { EX_CONFIG, type LoadConfigOrExitOptions, loadConfig, loadConfigOrExit } from './load.js';
export { secret } from './secret.js';
