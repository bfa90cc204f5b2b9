export { type BaseConfig, baseConfigSchema } from './base.js';
export type { ConfigProblem } from './errors.js';
export { envField } from './fields.js';
export { type LoadConfigOrExitOptions, loadConfigOrExit } from './load.js';
export { secret } from './secret.js';
