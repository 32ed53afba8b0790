// The existence check behind "HEAD links a blob held elsewhere" (docs/dedup.md): which
// repositories hold a blob, read from the blob's reverse index (holders/<alg>/<hex>/<name, / as ~>,
// written with every layer link), so the check costs the same few store calls however many
// repositories the registry has. It does the same store work whether the blob is absent or held
// only where the caller may not read: one stat of the blob index, one listing of its holders.
import type { ObjectStore } from '../storage/driver.js';
import * as paths from './paths.js';

/** Holders considered per check: one listing page. More holders than this: the client uploads. */
export const HOLDERS_SCANNED = 1000;

export interface HolderCandidates {
  /** Whether the blob's index is stored (a stat: the same cost found or not). */
  stored: boolean;
  /** Repositories that linked the blob (at most HOLDERS_SCANNED), in key order. */
  holders: string[];
}

/** One stat of the index and one listing, in parallel, whatever the outcome. */
export async function holderCandidates(store: ObjectStore, digest: string): Promise<HolderCandidates> {
  const [info, holders] = await Promise.all([store.stat(paths.blobIndexKey(digest)), listHolders(store, digest)]);
  return { stored: info !== undefined, holders };
}

export async function listHolders(store: ObjectStore, digest: string, limit = HOLDERS_SCANNED): Promise<string[]> {
  const holders: string[] = [];
  for await (const obj of store.list(paths.holdersPrefix(digest))) {
    const repo = paths.repoFromHolderKey(digest, obj.key);
    if (repo) holders.push(repo);
    if (holders.length >= limit) break;
  }
  return holders;
}
