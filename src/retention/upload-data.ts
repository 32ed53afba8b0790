// Upload data (data/<id>/<part>) that neither an upload session nor a blob index refers to: what
// failed, cancelled and expired uploads leave. Run by the collector and by the upload janitor.
import type { BlobIndex } from '../registry/blobs.js';
import { readJson } from '../registry/objects.js';
import * as paths from '../registry/paths.js';
import type { ObjectStore } from '../storage/driver.js';
import { forEachLimit } from './concurrency.js';

/**
 * Deletes unreferenced parts last modified before `olderThanMs`. Sessions are listed before blob
 * indexes: a commit writes its index before it deletes its session, so a part committed during
 * the scan is seen in one list or the other. Every blob index is read (committed data has no
 * session either), so callers run this sparingly: each collection, and the janitor at most once
 * per uploads.maxAge.
 */
export async function sweepUploadData(store: ObjectStore, options: { olderThanMs: number; dryRun?: boolean }): Promise<{ parts: number; bytes: number }> {
  const sessions = new Set<string>();
  for await (const obj of store.list(paths.UPLOADS_PREFIX)) {
    const id = paths.uploadIdFromStateKey(obj.key);
    if (id) sessions.add(id);
  }
  const candidates: Array<{ key: string; size: number }> = [];
  for await (const obj of store.list(paths.DATA_PREFIX)) {
    const id = obj.key.slice(paths.DATA_PREFIX.length).split('/')[0]!;
    if (!sessions.has(id) && obj.modified.getTime() <= options.olderThanMs) candidates.push({ key: obj.key, size: obj.size });
  }
  if (candidates.length === 0) return { parts: 0, bytes: 0 };
  const indexKeys: string[] = [];
  for await (const obj of store.list(paths.BLOBS_PREFIX)) if (paths.digestFromBlobIndexKey(obj.key)) indexKeys.push(obj.key);
  const referenced = new Set<string>();
  await forEachLimit(indexKeys, 8, async (key) => {
    // Read afresh, not from a cache: a blob collected and pushed again has new parts.
    for (const part of (await readJson<BlobIndex>(store, key))?.parts ?? []) referenced.add(part.key);
  });
  const result = { parts: 0, bytes: 0 };
  for (const part of candidates) {
    if (referenced.has(part.key)) continue;
    if (!options.dryRun) await store.delete(part.key);
    result.parts++;
    result.bytes += part.size;
  }
  return result;
}
