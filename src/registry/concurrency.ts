// Bounded parallelism for store round trips (the collector, a manifest's reference checks): a few
// calls in flight at once multiply throughput without flooding the store or the file descriptors.

/** Store calls kept in flight by one task (marking, sweeping, checking a manifest's references). */
export const STORE_PARALLELISM = 8;

/**
 * Runs `fn` over `items` with at most `limit` calls in flight. After the first failure no new
 * item starts, and it rejects with that failure once the calls in flight have settled: a
 * collection that fails stops deleting before it lets go of its lease.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
