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

/** A tag pushed in this process: a new recovery point when it moved, else a re-push of the same digest. */
export interface TagMove {
  repo: string;
  tag: string;
  digest: string;
  /** When this push happened. */
  pushedAt: Date;
  /** True when the tag moved, so the push recorded a new recovery point. */
  moved: boolean;
}

export class Tags {
  private readonly cache: LRUCache<string, { pointer: TagPointer | null }>;
  private readonly ttlDisabled: boolean;
  private readonly moveListeners = new Set<(move: TagMove) => void>();
  /**
   * Whether a re-push of the digest the tag points at must record a new point rather than keep
   * the one pushed at `pushedAtMs` (its lock runs out soon: docs/immutability.md). Set by the
   * registry, which knows the lock; until then a re-push keeps the point.
   */
  renewPoint: (pushedAtMs: number) => Promise<boolean> = async () => false;

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
    const pointer = await this.readPointer(repo, tag, options);
    if (!this.ttlDisabled) this.cache.set(key, { pointer: pointer ?? null });
    return pointer;
  }

  /** The pointer as stored now, past the cache. */
  readPointer(repo: string, tag: string, options?: OpOptions): Promise<TagPointer | undefined> {
    return readJson<TagPointer>(this.store, paths.currentTagKey(repo, tag), options);
  }

  /**
   * Points the tag at `digest`; records a recovery point when that moves the tag. The pointer's
   * pushedAt names the history entry of the point it stands for (a re-push of the same digest
   * keeps it), so either side of a race with pruning can tell whether that entry is gone.
   */
  async set(repo: string, tag: string, digest: string, now = new Date()): Promise<void> {
    const key = paths.currentTagKey(repo, tag);
    const previous = await this.readPointer(repo, tag);
    const kept = previous?.digest === digest && !(await this.renewPoint(Date.parse(previous.pushedAt)));
    const pointer: TagPointer = kept ? previous : { digest, pushedAt: now.toISOString() };
    const point = historyKeyOf(repo, tag, pointer);
    if (pointer !== previous) await writeJson(this.store, point, pointer);
    await writeJson(this.store, key, pointer);
    this.cache.set(key, { pointer });
    // A prune that planned before this pointer write may have dropped the entry since; it checks
    // the pointer after its delete, and this checks the entry after the pointer write, so one of
    // the two sees the other and the current point keeps its entry.
    if (!(await this.store.stat(point))) await this.keepPoint(repo, tag, pointer);
    const moved = pointer !== previous;
    for (const listener of this.moveListeners) listener({ repo, tag, digest, pushedAt: moved ? new Date(pointer.pushedAt) : now, moved });
  }

  /**
   * Calls `listener` after every tag push this process handles, moved or not (RPO monitoring);
   * returns its removal. The current pointer is rewritten by every push, so its modification time
   * is the tag's last push, also for a re-push of the same digest.
   */
  onMove(listener: (move: TagMove) => void): () => void {
    this.moveListeners.add(listener);
    return () => this.moveListeners.delete(listener);
  }

  /** Called by prune after it removed a history entry: puts it back if the tag points at it now. */
  async keepIfCurrent(repo: string, tag: string, historyKey: string): Promise<boolean> {
    const pointer = await this.readPointer(repo, tag);
    if (!pointer || historyKeyOf(repo, tag, pointer) !== historyKey) return false;
    await this.keepPoint(repo, tag, pointer);
    return true;
  }

  /** Writes the pointer's history entry back and drops its pruned record. */
  private async keepPoint(repo: string, tag: string, pointer: TagPointer): Promise<void> {
    const pushedAtMs = Date.parse(pointer.pushedAt);
    await writeJson(this.store, paths.tagHistoryKey(repo, tag, pushedAtMs, pointer.digest), pointer);
    await this.store.delete(paths.prunedKey(repo, tag, pushedAtMs, pointer.digest));
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

function historyKeyOf(repo: string, tag: string, pointer: TagPointer): string {
  return paths.tagHistoryKey(repo, tag, Date.parse(pointer.pushedAt), pointer.digest);
}
