// Tombstones: how the online collector and concurrent pushes agree on a blob's fate without locks.
// The collector writes a tombstone for every blob it means to delete, waits longer than any
// request's check-then-write window (gc.sweepDelay), re-marks, and deletes a blob only while its
// tombstone is still there. Every request that relies on an existing blob (HEAD, mount, dedup at
// commit, a manifest's references) clears the tombstone first, so the collector sees the use.
// docs/retention-and-gc.md walks through the interleavings.
import type { ObjectStore, OpOptions } from '../storage/driver.js';
import { readJson, writeJson } from './objects.js';
import * as paths from './paths.js';

export class Tombstones {
  constructor(private readonly store: ObjectStore) {}

  /** Called before relying on a blob: removes its tombstone, if the collector placed one. */
  async clear(digest: string, options?: OpOptions): Promise<void> {
    const key = paths.tombstoneKey(digest);
    if (await this.store.stat(key, options)) await this.store.delete(key, options);
  }

  /** Placed by one collector run; only that run may act on it. */
  async place(digest: string, owner: string): Promise<void> {
    await writeJson(this.store, paths.tombstoneKey(digest), { owner, placedAt: new Date().toISOString() });
  }

  /** True while `owner`'s tombstone stands: no request has used the blob since it was placed. */
  async heldBy(digest: string, owner: string): Promise<boolean> {
    return (await readJson<{ owner: string }>(this.store, paths.tombstoneKey(digest)))?.owner === owner;
  }

  async remove(digest: string): Promise<void> {
    await this.store.delete(paths.tombstoneKey(digest));
  }
}

/**
 * A request that saw a blob exist must write its reference to it well within the collector's
 * sweep delay, or the collector's re-mark may miss it: past half the delay it checks again.
 */
export function overran(startedAtMs: number, sweepDelayMs: number): boolean {
  return Date.now() - startedAtMs > sweepDelayMs / 2;
}
