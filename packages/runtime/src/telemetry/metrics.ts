import { type Counter, type Histogram, metrics } from '@opentelemetry/api';

/**
 * The runtime's instruments. They live on the global MeterProvider, which telemetry
 * registers before any app code (and `initMetrics` registers in tests), so the same
 * numbers go to /metrics (pull) and to the collector (OTLP push).
 */
export interface FlotillaMetrics {
  /** Jobs finished, by role and outcome (completed | failed | invalid). */
  jobs: Counter<{ role: string; outcome: string }>;
  /** Agent runs ended, by role and stop reason. */
  stopReasons: Counter<{ role: string; reason: string }>;
  /** Tool gateway calls, by tool and outcome (ok | duplicate | policy_denied | kill_switch | budget | invalid_input | timeout | error | circuit_open | invalid_output | aborted). */
  toolCalls: Counter<{ tool: string; outcome: string }>;
  /** Approvals, by tool and what happened (requested | approve | deny | timeout | cancel). */
  approvals: Counter<{ tool: string; decision: string }>;
  /** Share of each budget limit a run used (0..1), by role and kind (steps | tool_calls | seconds | tokens). */
  budgetUsed: Histogram<{ role: string; kind: string }>;
  /** LLM tokens, by provider and direction (prompt | completion). */
  llmTokens: Counter<{ provider: string; direction: string }>;
  /** Sandbox runs, by language and outcome (ok | error | timeout | memory | refused). */
  sandboxRuns: Counter<{ language: string; outcome: string }>;
  /** Wall time of sandbox runs in seconds, by language and outcome. */
  sandboxRunDuration: Histogram<{ language: string; outcome: string }>;
}

let cached: { provider: unknown; value: FlotillaMetrics } | undefined;

/** Instruments on the current global MeterProvider; re-created if a provider was registered since. */
export function getMetrics(): FlotillaMetrics {
  const provider = metrics.getMeterProvider();
  if (cached?.provider === provider) return cached.value;
  const meter = metrics.getMeter('flotilla');
  const value: FlotillaMetrics = {
    jobs: meter.createCounter('flotilla_jobs', { description: 'Jobs finished, by role and outcome' }),
    stopReasons: meter.createCounter('flotilla_stop_reasons', { description: 'Agent runs ended, by stop reason' }),
    toolCalls: meter.createCounter('flotilla_tool_calls', { description: 'Tool gateway calls, by outcome' }),
    approvals: meter.createCounter('flotilla_approvals', {
      description: 'Tool calls that needed approval: requested, then approve | deny | timeout | cancel',
    }),
    budgetUsed: meter.createHistogram('flotilla_budget_used_ratio', {
      description: 'Fraction of each budget limit used by a run',
      advice: { explicitBucketBoundaries: [0.1, 0.25, 0.5, 0.75, 0.9, 1] },
    }),
    llmTokens: meter.createCounter('flotilla_llm_tokens', { description: 'LLM tokens used' }),
    sandboxRuns: meter.createCounter('flotilla_sandbox_runs', { description: 'Sandbox runs, by outcome' }),
    sandboxRunDuration: meter.createHistogram('flotilla_sandbox_run_duration', {
      description: 'Wall time of sandbox runs',
      unit: 's',
      // From a bare interpreter start (~0.05 s) to the longest wall-time limit a deployment would set.
      advice: { explicitBucketBoundaries: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
    }),
  };
  cached = { provider, value };
  return value;
}
