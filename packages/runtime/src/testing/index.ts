// @flotilla/runtime/testing: helpers for tests of services built on the runtime. Nothing here runs in
// production, so none of it is in the main entry.

export { installInMemoryTracing } from '../telemetry/testing.js';
export { type TestAgentContextOptions, testAgentContext } from './agent-context.js';
