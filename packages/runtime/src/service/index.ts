export { createRedisConnection, duplicateConnection, isCluster, type RedisRole } from './redis-connection.js';
export { type Service, type StartServiceOptions, startService } from './service.js';
