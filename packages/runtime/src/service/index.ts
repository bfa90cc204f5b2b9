export { type RedisRole, type Service, type StartServiceOptions, startService } from './service.js';
