import { TaskEvent } from '@flotilla/contracts';

/** What the live view follows: the task's progress and its approvals, as the contracts define them. */
export type WatchEvent = TaskEvent;
export type ApprovalRequested = Extract<TaskEvent, { type: 'approval_requested' }>;

/** A stream entry the view can show, or undefined for one it does not know (a newer server's). */
export function parseWatchEvent(raw: unknown): WatchEvent | undefined {
  const event = TaskEvent.safeParse(raw);
  return event.success ? event.data : undefined;
}
