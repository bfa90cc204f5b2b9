import { SpanStatusCode, trace } from '@opentelemetry/api';
import { getMetrics } from '../telemetry/metrics.js';
import { LlmAbortError, LlmBadResponseError, LlmUnusableOutputError } from './errors.js';
import type { ProviderChat } from './provider.js';
import type { ChatOptions, ChatResponse, LlmClient } from './types.js';

/** Values of the OTel `gen_ai.system` attribute per provider (GenAI semantic conventions). */
const GEN_AI_SYSTEM: Record<LlmClient['provider'], string> = {
  anthropic: 'anthropic',
  openai: 'openai',
  'openai-compatible': 'openai',
  offline: 'flotilla.offline',
};

/**
 * Wraps one provider with what every call needs regardless of vendor: the caller's and the
 * budget's signals merged, tokens charged to the budget (unusable answers included: they were
 * paid for), token metrics, and an `llm.chat` span.
 */
export function createClient(provider: LlmClient['provider'], model: string, chat: ProviderChat): LlmClient {
  const tracer = trace.getTracer('flotilla');
  const account = (usage: ChatResponse['usage'], options: ChatOptions) => {
    const metrics = getMetrics();
    metrics.llmTokens.add(usage.promptTokens, { provider, direction: 'prompt' });
    metrics.llmTokens.add(usage.completionTokens, { provider, direction: 'completion' });
    options.budget?.chargeTokens(usage.promptTokens + usage.completionTokens);
  };

  return {
    provider,
    model,
    chat(request, options = {}) {
      return tracer.startActiveSpan(
        'llm.chat',
        {
          attributes: {
            'gen_ai.system': GEN_AI_SYSTEM[provider],
            'gen_ai.request.model': model,
            'gen_ai.operation.name': 'chat',
          },
        },
        async (span) => {
          const signals = [options.signal, options.budget?.signal].filter((s): s is AbortSignal => s !== undefined);
          const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
          const budgetDeadline = options.budget ? Date.now() + options.budget.remaining().ms : undefined;
          const deadline =
            options.deadline !== undefined && budgetDeadline !== undefined
              ? Math.min(options.deadline, budgetDeadline)
              : (options.deadline ?? budgetDeadline);
          try {
            if (signal?.aborted) throw new LlmAbortError(provider, signal.reason);
            const res = await chat(request, { signal, deadline });
            account(res.usage, options);
            span.setAttributes({
              'gen_ai.usage.input_tokens': res.usage.promptTokens,
              'gen_ai.usage.output_tokens': res.usage.completionTokens,
              'gen_ai.response.finish_reasons': [res.finishReason],
              'flotilla.llm.attempts': res.attempts,
            });
            return res;
          } catch (err) {
            if ((err instanceof LlmBadResponseError || err instanceof LlmUnusableOutputError) && err.usage)
              account(err.usage, options);
            const error =
              signal?.aborted && !(err instanceof LlmAbortError) ? new LlmAbortError(provider, signal.reason) : err;
            span.recordException(error instanceof Error ? error : String(error));
            span.setStatus({
              code: SpanStatusCode.ERROR,
              message: error instanceof Error ? error.message : String(error),
            });
            throw error;
          } finally {
            span.end();
          }
        },
      );
    },
  };
}
