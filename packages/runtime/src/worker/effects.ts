import type { LlmClient } from '../llm/index.js';
import type { Memory } from '../memory/index.js';

/**
 * A run's view of the model and of memory: every call first awaits `gate` (RunContext's
 * beforeEffect), so nothing reaches a vendor or Chroma before the run's start is recorded and the
 * task is known not to be cancelled. Written out per method so that a method added to LlmClient
 * or Memory does not compile until someone decides whether it is an effect.
 */
export function gatedLlm(llm: LlmClient, gate: () => Promise<void>): LlmClient {
  return {
    provider: llm.provider,
    model: llm.model,
    chat: async (request, options) => {
      await gate();
      return llm.chat(request, options);
    },
  };
}

export function gatedMemory(memory: Memory, gate: () => Promise<void>): Memory {
  return {
    tenant: memory.tenant,
    add: async (namespace, docs) => {
      await gate();
      return memory.add(namespace, docs);
    },
    query: async (namespace, text, options) => {
      await gate();
      return memory.query(namespace, text, options);
    },
    cleanup: async (namespace, options) => {
      await gate();
      return memory.cleanup(namespace, options);
    },
    count: async (namespace) => {
      await gate();
      return memory.count(namespace);
    },
    deleteNamespace: async (namespace) => {
      await gate();
      return memory.deleteNamespace(namespace);
    },
  };
}
