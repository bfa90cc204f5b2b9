import type { ChatRequest, ChatResponse } from './types.js';

/** What a provider gets for one call; the client wrapper owns budgets, spans and metrics. */
export interface ProviderCall {
  /** The caller's signal combined with the budget's. */
  signal: AbortSignal | undefined;
  /** Epoch ms after which no retry starts. */
  deadline: number | undefined;
}

/** One vendor's wire format behind a single function. */
export type ProviderChat = (request: ChatRequest, call: ProviderCall) => Promise<ChatResponse>;
