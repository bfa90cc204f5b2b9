// The model the orchestration figures run against: a fake OpenAI-compatible vendor (test-utils), on
// loopback, scripted per request so every task has the same shape whatever the goal says.
import { fakeReply, startFakeOpenAI } from '@flotilla/test-utils';

/** Always exactly three researcher subtasks: the shape the figures are defined on. */
const PLAN = {
  subtasks: [1, 2, 3].map((i) => ({ role: 'researcher', input: { question: `bench question ${i}` } })),
};

/**
 * Starts the vendor. The planner's request (structured output named `plan`) gets the plan. With
 * `toolCall`, a researcher's first turn asks for `memory.search` and its second answers, as a
 * research loop does (a tool that answers at once without memory, a Chroma query with it); without,
 * it answers at once. Everything else (the aggregator's answer) gets the fake's default text.
 * `delayMs`: every chat answer waits that long, as a real model does.
 */
export function startBenchModel({ toolCall, delayMs = 0 }) {
  return startFakeOpenAI(
    (req) => {
      const body = req.body ?? {};
      if (body.response_format?.json_schema?.name === 'plan') return fakeReply.json(PLAN);
      const isResearcher = Array.isArray(body.tools) && body.tools.length > 0;
      const sawTool = Array.isArray(body.messages) && body.messages.some((m) => m.role === 'tool');
      if (toolCall && isResearcher && !sawTool) return fakeReply.toolCall('memory_search', { query: 'bench' });
      return undefined;
    },
    // Thousands of requests: the fake keeps none of them.
    { delayMs, keepRequests: false },
  );
}

/** What the LLM settings of every service say: the fake, by its wire protocol. */
export const modelEnv = (vendor) => ({
  LLM_PROVIDER: 'openai-compatible',
  LLM_BASE_URL: vendor.url,
  LLM_MODEL: 'bench-fake',
});
