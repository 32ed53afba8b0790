// The documented bound on a registry process's RSS under concurrent S3 uploads (docs/memory.md),
// in one place: the RSS test asserts it and the transfer benchmark reports against it.

/** The terms of the bound, in MiB, each measured (docs/memory.md). */
export const RSS_BOUND_TERMS = {
  /** The built process, started on an empty store (measured 91–107). */
  idleMiB: 120,
  /** Freed transfer chunks the garbage collector has not collected yet. */
  gcSlackMiB: 64,
  /** A waiting upload's connection, request and buffered chunk (measured ~0.4). */
  perUploadMiB: 0.5,
} as const;

/** Peak RSS a process may reach with `uploads` concurrent uploads and an S3 budget of `budgetMiB`. */
export function rssBoundMiB(budgetMiB: number, uploads: number): number {
  const { idleMiB, gcSlackMiB, perUploadMiB } = RSS_BOUND_TERMS;
  return budgetMiB + idleMiB + gcSlackMiB + perUploadMiB * uploads;
}
