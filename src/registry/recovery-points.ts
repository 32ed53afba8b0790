// Recovery points: every digest a tag has pointed to (its history), with push time, whether it is
// pinned, whether the tag points at it now, and when it was last pulled. Restore points a tag back
// at an older recovery point (itself a new push in the history).
import { LRUCache } from 'lru-cache';
import type { AuditRecorder } from '../audit/recorder.js';
import type { ObjectStore, OpOptions } from '../storage/driver.js';
import { manifestUnknown } from './errors.js';
import type { Manifests } from './manifests.js';
import { readJson, writeJson } from './objects.js';
import * as paths from './paths.js';
import type { LockState, Protection } from './protection.js';
import type { Tags } from './tags.js';

export interface RecoveryPointRecord {
  repo: string;
  tag: string;
  digest: string;
  pushedAt: Date;
  lastPulledAt?: Date;
  pinned: boolean;
  current: boolean;
  /** Until when retention.lock protects it, while it does. */
  lockedUntil?: Date;
  /** The history entry's storage key (what pruning removes). */
  key: string;
}

/** Pull times are recorded at most this often per manifest and process: cheap, still useful. */
const PULL_RECORD_INTERVAL_MS = 3600_000;

export class RecoveryPoints {
  private readonly recentPulls = new LRUCache<string, true>({ max: 10_000, ttl: PULL_RECORD_INTERVAL_MS });

  constructor(
    private readonly store: ObjectStore,
    private readonly tags: Tags,
    private readonly manifests: Manifests,
    private readonly protection: Protection,
    private readonly audit: AuditRecorder,
  ) {}

  /**
   * Every point of the repository that can be restored: a point whose manifest was deleted
   * through the API is not listed (it could not be pulled or restored).
   */
  async list(repo: string, options?: OpOptions & { lock?: LockState }): Promise<RecoveryPointRecord[]> {
    const lock = options?.lock ?? (await this.protection.lockState());
    const deleted = new Set<string>();
    for await (const obj of this.store.list(paths.deletedManifestsPrefix(repo), options)) {
      const digest = paths.digestFromLinkKey(obj.key);
      if (digest) deleted.add(digest);
    }
    const current = new Map((await this.tags.list(repo, options)).map((t) => [t.tag, t.digest]));
    const pinned = new Set<string>();
    for await (const obj of this.store.list(paths.pinsPrefix(repo), options)) {
      const digest = paths.digestFromLinkKey(obj.key);
      if (digest) pinned.add(digest);
    }
    const points: RecoveryPointRecord[] = [];
    const pulls = new Map<string, Date | undefined>();
    for await (const obj of this.store.list(paths.tagHistoryRoot(repo), options)) {
      const parsed = paths.parseTagHistoryKey(repo, obj.key);
      if (!parsed || deleted.has(parsed.digest)) continue;
      if (!pulls.has(parsed.digest)) {
        const pull = await readJson<{ lastPulledAt: string }>(this.store, paths.pullKey(repo, parsed.digest), options);
        pulls.set(parsed.digest, pull ? new Date(pull.lastPulledAt) : undefined);
      }
      points.push({
        repo,
        tag: parsed.tag,
        digest: parsed.digest,
        pushedAt: new Date(parsed.pushedAtMs),
        lastPulledAt: pulls.get(parsed.digest),
        pinned: pinned.has(parsed.digest),
        current: false,
        ...(lock.isLocked(parsed.pushedAtMs) ? { lockedUntil: new Date(lock.lockedUntil(parsed.pushedAtMs)) } : {}),
        key: obj.key,
      });
    }
    // The current point is the newest entry with the digest the tag points at. (Not simply the
    // newest entry: two replicas pushing one tag at once may write history and pointer in
    // different orders.)
    for (const [tag, digest] of current) {
      const newest = points.filter((p) => p.tag === tag && p.digest === digest).at(-1);
      if (newest) newest.current = true;
    }
    return points;
  }

  async pin(repo: string, digest: string): Promise<void> {
    if (!(await this.manifests.has(repo, digest))) throw manifestUnknown(digest);
    await writeJson(this.store, paths.pinKey(repo, digest), { pinnedAt: new Date().toISOString() });
    this.audit.record({ action: 'pin', repository: repo, digest });
  }

  /** Refused (DENIED) while a point of the manifest is locked. */
  async unpin(repo: string, digest: string): Promise<void> {
    await this.protection.assertUnpinnable(repo, digest);
    await this.store.delete(paths.pinKey(repo, digest));
    this.audit.record({ action: 'unpin', repository: repo, digest });
  }

  /** Points `tag` at a manifest the repository still holds; recorded as a new recovery point. */
  async restore(repo: string, tag: string, digest: string): Promise<void> {
    // claim, not has: the point may be a pruned one the collector is about to remove.
    if (!(await this.manifests.claim(repo, digest))) throw manifestUnknown(digest);
    await this.tags.set(repo, tag, digest);
    this.audit.record({ action: 'restore', repository: repo, tag, digest });
  }

  /**
   * Moves a point out of the tag's history into the pruned list, where it stays restorable until
   * the collector removes it (retention.grace). Written before deleted: a crash keeps the point.
   */
  async prune(point: RecoveryPointRecord, lock: LockState): Promise<boolean> {
    // The plan may be older than a lock raised or a pin set since: asked again, just before.
    if (!(await this.protection.mayPrune(point, lock))) return false;
    const key = paths.prunedKey(point.repo, point.tag, point.pushedAt.getTime(), point.digest);
    await writeJson(this.store, key, { prunedAt: new Date().toISOString() });
    await this.store.delete(point.key);
    // The plan saw another pointer; a push that moved the tag here since keeps its point.
    await this.tags.keepIfCurrent(point.repo, point.tag, point.key);
    return true;
  }

  /** Pruned points not yet collected, oldest push first per tag. */
  async listPruned(repo: string, options?: OpOptions): Promise<Array<{ tag: string; digest: string; pushedAt: Date; prunedAt: Date }>> {
    const out: Array<{ tag: string; digest: string; pushedAt: Date; prunedAt: Date }> = [];
    for await (const obj of this.store.list(paths.prunedRoot(repo), options)) {
      const parsed = paths.parsePrunedKey(repo, obj.key);
      if (parsed) out.push({ tag: parsed.tag, digest: parsed.digest, pushedAt: new Date(parsed.pushedAtMs), prunedAt: obj.modified });
    }
    return out;
  }

  /** Records a pull; throttled, and never fails the pull that triggered it. */
  async recordPull(repo: string, digest: string): Promise<void> {
    const id = `${repo}@${digest}`;
    if (this.recentPulls.has(id)) return;
    this.recentPulls.set(id, true);
    await writeJson(this.store, paths.pullKey(repo, digest), { lastPulledAt: new Date().toISOString() });
  }
}
