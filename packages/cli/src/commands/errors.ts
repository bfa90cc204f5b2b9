/** A mistake in the command line itself (exit 2, with the usage pointer), as opposed to a failure doing it (exit 1). */
export class UsageError extends Error {}
