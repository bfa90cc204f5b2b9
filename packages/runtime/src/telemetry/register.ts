// The `node --import @flotilla/runtime/register` entry: telemetry must be registered before any
// app module loads, or instruments and tracers created at import time bind to no-op providers
// (opentelemetry-js doc/esm-support.md). It imports only the telemetry setup, not the runtime.
import { initTelemetry } from './setup.js';

await initTelemetry();
