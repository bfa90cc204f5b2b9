import { redisKeys } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ChatResponse } from '../llm/index.js';
import type { ToolOutcome } from '../tools/index.js';
import { TASK_EVENTS_TTL_SECONDS } from './events.js';

/**
 * What a run saw, in order: each model reply and each tool outcome, with what each charged to
 * the budget. A run that parks for an approval saves it; when the run resumes (on any replica)
 * its handler starts again from the top and the journal answers its calls from the record, so it
 * reaches the parked call the way it did the first time, pays the same budget, and nothing is
 * sent to the model or run by a tool twice. Runs that never park only keep it in memory.
 */
export type JournalEntry =
  | { kind: 'llm'; response: ChatResponse; tokens: number }
  | { kind: 'tool'; name: string; outcome: ToolOutcome; toolCalls: number };

/** A parked run as saved: its journal and the time it spent running and parked so far. */
export interface JournalState {
  v: 1;
  entries: JournalEntry[];
  /** The run's identical-write counts when it parked (see ToolCallOptions.writes): replayed writes do not count themselves again. */
  writes: [string, number][];
  /** Milliseconds the run has spent running (not parked), over every part so far. */
  activeMs: number;
  /** Milliseconds spent parked before the latest park. */
  parkedMs: number;
  /** Epoch ms of the latest park. */
  parkedAt: number;
}

const JournalStateSchema = z.object({
  v: z.literal(1),
  entries: z.array(z.looseObject({ kind: z.enum(['llm', 'tool']) })),
  writes: z.array(z.tuple([z.string(), z.number()])),
  activeMs: z.number().nonnegative(),
  parkedMs: z.number().nonnegative(),
  parkedAt: z.number(),
});

/** The in-memory side: entries recorded by this part of the run, and the saved ones still to replay. */
export class RunJournal {
  readonly entries: JournalEntry[] = [];
  readonly #replay: readonly JournalEntry[];
  #cursor = 0;

  constructor(saved?: JournalState) {
    this.#replay = saved?.entries ?? [];
  }

  /** True while recorded entries remain to be replayed. */
  get replaying(): boolean {
    return this.#cursor < this.#replay.length;
  }

  /**
   * The next recorded entry if it is a `kind` call (of tool `name`), which the caller then returns
   * instead of calling out. A run that took another path than its record (a handler that is not
   * deterministic given the same replies) stops replaying there and goes on live.
   */
  next(kind: 'llm'): Extract<JournalEntry, { kind: 'llm' }> | undefined;
  next(kind: 'tool', name: string): Extract<JournalEntry, { kind: 'tool' }> | undefined;
  next(kind: 'llm' | 'tool', name?: string): JournalEntry | undefined {
    const entry = this.#replay[this.#cursor];
    if (!entry) return undefined;
    if (entry.kind !== kind || (entry.kind === 'tool' && entry.name !== name)) {
      this.#cursor = this.#replay.length;
      return undefined;
    }
    this.#cursor++;
    return entry;
  }

  record(entry: JournalEntry): void {
    this.entries.push(entry);
  }
}

/** The parked run's saved journal, or undefined when it has none (it never parked) or it is unreadable. */
export async function loadJournal(
  redis: Redis,
  prefix: string,
  taskId: string,
  subtaskId: string,
): Promise<JournalState | undefined> {
  const raw = await redis.get(redisKeys(prefix).runJournal(taskId, subtaskId));
  if (raw === null) return undefined;
  try {
    const parsed = JournalStateSchema.safeParse(JSON.parse(raw));
    return parsed.success ? (parsed.data as unknown as JournalState) : undefined;
  } catch {
    return undefined;
  }
}

/** Saves a parked run's journal; it lives as long as the task's events. */
export async function saveJournal(
  redis: Redis,
  prefix: string,
  taskId: string,
  subtaskId: string,
  state: JournalState,
): Promise<void> {
  await redis.set(
    redisKeys(prefix).runJournal(taskId, subtaskId),
    JSON.stringify(state),
    'EX',
    TASK_EVENTS_TTL_SECONDS,
  );
}

export async function deleteJournal(redis: Redis, prefix: string, taskId: string, subtaskId: string): Promise<void> {
  await redis.del(redisKeys(prefix).runJournal(taskId, subtaskId));
}
