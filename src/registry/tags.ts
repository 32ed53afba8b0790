// Tags and their history. Every push that moves a tag appends a history entry: the recovery
// points of that tag. The current pointer is briefly cached; local writes invalidate it, and the
// TTL bounds how long another replica's move can go unseen.
import { LRUCache } from 'lru-cache';
import type { ObjectStore, OpOptions } from '../storage/driver.js';
import { readJson, writeJson } from './objects.js';
import * as paths from './paths.js';

export interface TagPointer {
  digest: string;
  pushedAt: string;
}

export class Tags {
  private readonly cache: LRUCache<string, { pointer: TagPointer | null }>;
  private readonly ttlDisabled: boolean;

  constructor(
    private readonly store: ObjectStore,
    ttlMs: number,
  ) {
    this.cache = new LRUCache({ max: 10_000, ttl: Math.max(ttlMs, 1) });
    this.ttlDisabled = ttlMs <= 0;
  }

  async current(repo: string, tag: string, options?: OpOptions): Promise<TagPointer | undefined> {
    const key = paths.currentTagKey(repo, tag);
    const hit = this.ttlDisabled ? undefined : this.cache.get(key);
    if (hit) return hit.pointer ?? undefined;
    const pointer = await readJson<TagPointer>(this.store, key, options);
    if (!this.ttlDisabled) this.cache.set(key, { pointer: pointer ?? null });
    return pointer;
  }

  /** Points the tag at `digest`; records a recovery point when that moves the tag. */
  async set(repo: string, tag: string, digest: string, now = new Date()): Promise<void> {
    const key = paths.currentTagKey(repo, tag);
    const previous = await readJson<TagPointer>(this.store, key);
    const pointer: TagPointer = { digest, pushedAt: now.toISOString() };
    if (previous?.digest !== digest) {
      await writeJson(this.store, paths.tagHistoryKey(repo, tag, now.getTime(), digest), pointer);
    }
    await writeJson(this.store, key, pointer);
    this.cache.set(key, { pointer });
  }

  async delete(repo: string, tag: string): Promise<boolean> {
    const key = paths.currentTagKey(repo, tag);
    const existed = (await this.store.stat(key)) !== undefined;
    await this.store.delete(key);
    this.cache.delete(key);
    return existed;
  }

  /** Current tags of a repository, sorted, with what they point to. */
  async list(repo: string, options?: OpOptions): Promise<Array<{ tag: string } & TagPointer>> {
    const prefix = paths.currentTagsPrefix(repo);
    const out: Array<{ tag: string } & TagPointer> = [];
    for await (const obj of this.store.list(prefix, options)) {
      const pointer = await readJson<TagPointer>(this.store, obj.key, options);
      if (pointer) out.push({ tag: obj.key.slice(prefix.length), ...pointer });
    }
    return out;
  }

  /** Tag names only: one listing, no reads. */
  async names(repo: string, options?: OpOptions): Promise<string[]> {
    const prefix = paths.currentTagsPrefix(repo);
    const names: string[] = [];
    for await (const obj of this.store.list(prefix, options)) names.push(obj.key.slice(prefix.length));
    return names;
  }
}
