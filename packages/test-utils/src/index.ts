// Helpers for tests only; production code (the CLI included) never imports this package. The
// local-services tooling lives in @flotilla/devkit and is re-exported here so a test file has one
// place to import its helpers from.
export {
  chromaReachable,
  freePort,
  type ReceivedSpan,
  type RunningProcess,
  redisReachable,
  type ServiceHandle,
  startChroma,
  startOtlpReceiver,
  startProcess,
  startRedis,
  stopAll,
  waitFor,
} from '@flotilla/devkit';
export * from './fake-llm/index.js';
export { type ForwardProxy, startForwardProxy } from './forward-proxy.js';
export { type ProxyMode, startTcpProxy, type TcpProxy } from './proxy.js';
export { type RedisCluster, type RedisClusterOptions, startRedisCluster } from './redis-cluster.js';
export { testServices, uniquePrefix } from './services.js';
