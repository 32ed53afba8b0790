// The existence check behind "HEAD links a blob held elsewhere" (docs/dedup.md): which
// repositories hold a blob, read from the blob's reverse index (holders/<alg>/<hex>/<name>/_link,
// written with every layer link), so the check costs the same few store calls however many
// repositories the registry has. It does the same store work whether the blob is absent or held
// only where the caller may not read: one read of the blob index, one listing of its holders.
import type { ObjectStore } from '../storage/driver.js';
import { readJson } from './objects.js';
import type { BlobIndex } from './blobs.js';
import * as paths from './paths.js';

/** Holders considered per check: one listing page. More holders than this: the client uploads. */
export const HOLDERS_SCANNED = 1000;

export interface HolderCandidates {
  /** The index as the store has it (undefined: not stored). */
  index: BlobIndex | undefined;
  /** Repositories that linked the blob (at most HOLDERS_SCANNED), in key order. */
  holders: string[];
}

/** One index read and one listing, in parallel, whatever the outcome. */
export async function holderCandidates(store: ObjectStore, digest: string): Promise<HolderCandidates> {
  const [index, holders] = await Promise.all([readJson<BlobIndex>(store, paths.blobIndexKey(digest)), listHolders(store, digest)]);
  return { index, holders };
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
