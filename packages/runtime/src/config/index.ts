export { type BaseConfig, baseConfigSchema, defaultServiceVersion } from './base.js';
export { ConfigError, type ConfigProblem } from './errors.js';
export { envField } from './fields.js';
export {
  EX_CONFIG,
  type LoadConfigOptions,
  type LoadConfigOrExitOptions,
  loadConfig,
  loadConfigOrExit,
} from './load.js';
export { type SecretKind, secret, secretKind, secretUrl } from './secret.js';
