// Local-services tooling: what `flotilla dev` and `flotilla demo` run on a developer's machine, and
// what the tests start through @flotilla/test-utils. Nothing here is test-only, and no service imports it.
export { type ReceivedSpan, startOtlpReceiver } from './otlp.js';
export { freePort } from './ports.js';
export { type RunningProcess, startProcess, stopAll } from './process.js';
export {
  chromaReachable,
  redisReachable,
  type ServiceHandle,
  type StartRedisOptions,
  startChroma,
  startRedis,
} from './services.js';
export { waitFor } from './wait.js';
