import type { TaskView } from '@flotilla/contracts';

/**
 * Exit statuses of `submit --watch` (and the usage text's table): a script can tell a finished task
 * from one that failed, was cancelled or answered only in part, and all of them from the CLI's own
 * errors (1) and usage mistakes (2).
 */
export const EXIT = {
  completed: 0,
  error: 1,
  usage: 2,
  failed: 3,
  cancelled: 4,
  partial: 5,
} as const;

/** The exit status for a task that has ended; undefined while it has not. */
export function exitCodeFor(view: Pick<TaskView, 'status' | 'partial'>): number | undefined {
  switch (view.status) {
    case 'completed':
      return view.partial ? EXIT.partial : EXIT.completed;
    case 'failed':
      return EXIT.failed;
    case 'cancelled':
      return EXIT.cancelled;
    default:
      return undefined;
  }
}
