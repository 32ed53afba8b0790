// What may not be destroyed, decided in one place that every destructive path asks: a manifest
// DELETE by digest or by tag, an unpin, the prune plan and its executor, the collector's liveness.
//
// - A pinned point's manifest cannot be deleted (unpin first).
// - A manifest a tag points at cannot be deleted by digest (delete the tag first: the point stays
//   in the tag's history, restorable).
// - The lock (retention.lock): a recovery point younger than the lock cannot be deleted, pruned,
//   unpinned or collected, whoever asks; nor can a manifest that refers to it (a signature, an
//   SBOM). The lock's history lives in the store, one object per value ever set
//   (settings/lock/...), so every replica computes the same answer and a restart with a lower
//   configured value cannot shorten it. docs/immutability.md explains the rules.
import { randomBytes } from 'node:crypto';
import type { AuditRecorder } from '../audit/recorder.js';
import type { ObjectStore } from '../storage/driver.js';
import { RegistryError } from './errors.js';
import { readJson, writeJson } from './objects.js';
import * as paths from './paths.js';
import type { Tags } from './tags.js';

/**
 * The longest lock (100 years). A push time plus the lock must stay a valid date (8.64e15 ms at
 * most): a larger value would make every listing and DENIED naming the lock's end fail.
 */
export const MAX_LOCK_MS = 36_500 * 86_400_000;

export interface LockEntry {
  /** The lock period, ms. */
  lockMs: number;
  /** When it was set (ms since the epoch, the setting replica's clock). */
  setAtMs: number;
  /** retention.lock in a configuration, or the admin API. */
  source: 'config' | 'api';
}

/**
 * The lock as its history defines it. Each value is in force from when it was set; a value that is
 * replaced stays in force for its own length after that (so lowering takes effect only once the
 * old lock has run out, raising at once). A point pushed at `p` is locked until `p` plus the
 * largest value in force at any time since `p`: the lock it was pushed under, or a larger one set
 * since. Pure: tested without a store.
 */
export class LockState {
  readonly entries: readonly LockEntry[];

  constructor(entries: readonly LockEntry[], readonly nowMs: number) {
    this.entries = [...entries].sort((a, b) => a.setAtMs - b.setAtMs);
  }

  /** Until when entry i is in force. */
  private endOf(i: number): number {
    const next = this.entries[i + 1];
    return next ? next.setAtMs + this.entries[i]!.lockMs : Infinity;
  }

  /** When a point pushed at `pushedAtMs` may first be destroyed. */
  lockedUntil(pushedAtMs: number): number {
    let longest = 0;
    this.entries.forEach((e, i) => {
      if (this.endOf(i) > pushedAtMs) longest = Math.max(longest, e.lockMs);
    });
    return pushedAtMs + longest;
  }

  isLocked(pushedAtMs: number): boolean {
    return this.lockedUntil(pushedAtMs) > this.nowMs;
  }

  /** The lock in force now: what a point pushed now gets. */
  effectiveMs(): number {
    let longest = 0;
    this.entries.forEach((e, i) => {
      if (e.setAtMs <= this.nowMs && this.endOf(i) > this.nowMs) longest = Math.max(longest, e.lockMs);
    });
    // An entry set "in the future" by a replica whose clock runs ahead counts at once.
    for (const e of this.entries) if (e.setAtMs > this.nowMs) longest = Math.max(longest, e.lockMs);
    return longest;
  }

  /** The newest value set; below effectiveMs() while a lowering waits for the old lock to run out. */
  configuredMs(): number {
    return this.entries.at(-1)?.lockMs ?? 0;
  }

  /** When the newest value alone will be in force (now, unless a lowering is pending). */
  settledAtMs(): number {
    const configured = this.configuredMs();
    let at = this.nowMs;
    this.entries.forEach((e, i) => {
      if (e.lockMs > configured) at = Math.max(at, this.endOf(i));
    });
    return at;
  }
}

export interface Protected {
  pinned: boolean;
  /** Tags pointing at the manifest now. */
  currentOf: string[];
  /** The latest lock end among the manifest's points (history and pruned), if one is locked. */
  lockedUntil?: Date;
}

export class Protection {
  /**
   * Everything a manifest of a repository reaches (itself, index children, configs, layers); set
   * by the registry, which can read manifests. Until then nothing is known to be reached.
   */
  referencesOf: (repo: string, digest: string) => Promise<Set<string>> = async (_repo, digest) => new Set([digest]);

  constructor(
    private readonly store: ObjectStore,
    private readonly tags: Tags,
    private readonly audit: AuditRecorder,
  ) {}

  async lockState(now = Date.now()): Promise<LockState> {
    const entries: LockEntry[] = [];
    for await (const obj of this.store.list(paths.LOCK_HISTORY_PREFIX)) {
      const entry = await readJson<LockEntry>(this.store, obj.key);
      // A value above the cap (written before it existed) counts as the cap: 100 years either way.
      if (entry && Number.isFinite(entry.lockMs) && Number.isFinite(entry.setAtMs)) entries.push({ ...entry, lockMs: Math.min(entry.lockMs, MAX_LOCK_MS) });
    }
    return new LockState(entries, now);
  }

  /**
   * Sets the lock. Raising takes effect at once; lowering once the lock in force has run out.
   * Nothing is written when the value is already the newest one.
   */
  async setLock(lockMs: number, source: LockEntry['source']): Promise<LockState> {
    if (!Number.isSafeInteger(lockMs) || lockMs < 0 || lockMs > MAX_LOCK_MS) {
      throw new RegistryError('DENIED', 'the lock must be a duration from zero to 36500d (100 years)');
    }
    const before = await this.lockState();
    if (before.entries.length > 0 && before.configuredMs() === lockMs) return before;
    const entry: LockEntry = { lockMs, setAtMs: Date.now(), source };
    await writeJson(this.store, paths.lockEntryKey(entry.setAtMs, randomBytes(6).toString('hex')), entry);
    const after = await this.lockState();
    this.audit.record({
      action: 'lock.change',
      detail: { source, from: before.effectiveMs(), to: lockMs, effective: after.effectiveMs(), settledAt: new Date(after.settledAtMs()).toISOString() },
    });
    return after;
  }

  /**
   * Applies retention.lock from a configuration at start-up: only when it differs from the last
   * value a configuration set (a value set through the API survives restarts with the same file).
   */
  async applyConfigured(lockMs: number): Promise<LockState> {
    const state = await this.lockState();
    const lastFromConfig = [...state.entries].reverse().find((e) => e.source === 'config');
    // A configuration that never set a lock counts as 0: starting with 0 records nothing, and
    // does not lower a value set through the API.
    if ((lastFromConfig?.lockMs ?? 0) === lockMs) return state;
    return this.setLock(lockMs, 'config');
  }

  /** Why a manifest of `repo` may not be destroyed (read fresh from the store, no cache). */
  async of(repo: string, digest: string, state?: LockState): Promise<Protected> {
    const lock = state ?? (await this.lockState());
    const pinned = (await this.store.stat(paths.pinKey(repo, digest))) !== undefined;
    const currentOf: string[] = [];
    for (const t of await this.tags.list(repo)) {
      // The stored pointer, not the cache: another replica may have moved the tag.
      if (t.digest === digest) currentOf.push(t.tag);
    }
    let until = 0;
    for (const prefix of [paths.tagHistoryRoot(repo), paths.prunedRoot(repo)]) {
      for await (const obj of this.store.list(prefix)) {
        const parsed = prefix === paths.prunedRoot(repo) ? paths.parsePrunedKey(repo, obj.key) : paths.parseTagHistoryKey(repo, obj.key);
        if (parsed?.digest === digest && lock.isLocked(parsed.pushedAtMs)) until = Math.max(until, lock.lockedUntil(parsed.pushedAtMs));
      }
    }
    return { pinned, currentOf, ...(until > 0 ? { lockedUntil: new Date(until) } : {}) };
  }

  /** Throws DENIED unless the manifest may be deleted from the repository by digest. */
  async assertManifestDeletable(repo: string, digest: string): Promise<void> {
    const p = await this.of(repo, digest);
    if (p.lockedUntil) {
      throw denied(`recovery point is locked until ${p.lockedUntil.toISOString()} (retention.lock): nobody can delete it before then`, {
        repository: repo,
        digest,
        lockedUntil: p.lockedUntil.toISOString(),
      });
    }
    if (p.pinned) {
      throw denied('recovery point is pinned: unpin it first (POST /admin/v1/recovery-points/unpin)', { repository: repo, digest, pinned: true });
    }
    if (p.currentOf.length > 0) {
      throw denied(
        `manifest is the current point of tag(s) ${p.currentOf.join(', ')}: delete the tag first (DELETE /v2/${repo}/manifests/<tag>), which keeps it as a recovery point`,
        { repository: repo, digest, tags: p.currentOf },
      );
    }
    // A child of a protected index (one platform of a multi-platform point) is part of that point.
    const holder = await this.protectedHolderOf(repo, digest);
    if (holder) {
      throw denied(`manifest is part of recovery point ${holder}, which is current, pinned or locked: it cannot be deleted`, {
        repository: repo,
        digest,
        manifest: holder,
      });
    }
  }

  /**
   * Throws DENIED while the manifest a referrer refers to (its subject: the point a signature, SBOM
   * or attestation is about) is locked. Without its signature a point may not run where signatures
   * are checked, so a stolen credential could make a locked point useless without touching it.
   */
  async assertReferrerDeletable(repo: string, digest: string, subject: string): Promise<void> {
    const { lockedUntil } = await this.of(repo, subject);
    if (!lockedUntil) return;
    throw denied(
      `manifest refers to recovery point ${subject}, which is locked until ${lockedUntil.toISOString()} (retention.lock): nobody can delete its signatures, SBOMs or attestations before then`,
      { repository: repo, digest, subject, lockedUntil: lockedUntil.toISOString() },
    );
  }

  /** A current, pinned or locked manifest of `repo` other than `digest` that reaches `digest`. */
  private async protectedHolderOf(repo: string, digest: string): Promise<string | undefined> {
    for (const manifest of await this.protectedManifests(repo)) {
      if (manifest !== digest && (await this.referencesOf(repo, manifest)).has(digest)) return manifest;
    }
    return undefined;
  }

  /** Throws DENIED when the tag points at a locked point (deleting the tag would un-current it). */
  async assertTagDeletable(repo: string, tag: string): Promise<void> {
    const pointer = await this.tags.readPointer(repo, tag);
    if (!pointer) return;
    const lock = await this.lockState();
    const until = lock.lockedUntil(Date.parse(pointer.pushedAt));
    if (until > lock.nowMs) {
      throw denied(`tag ${tag} points at a recovery point locked until ${new Date(until).toISOString()} (retention.lock): it cannot be deleted before then`, {
        repository: repo,
        tag,
        digest: pointer.digest,
        lockedUntil: new Date(until).toISOString(),
      });
    }
  }

  async assertUnpinnable(repo: string, digest: string): Promise<void> {
    const p = await this.of(repo, digest);
    if (p.lockedUntil) {
      throw denied(`recovery point is locked until ${p.lockedUntil.toISOString()} (retention.lock): it cannot be unpinned before then`, {
        repository: repo,
        digest,
        lockedUntil: p.lockedUntil.toISOString(),
      });
    }
  }

  /**
   * Manifests of `repo` nothing may take away: the current points of its tags, its pins, and its
   * points (kept or pruned) that the lock protects.
   */
  async protectedManifests(repo: string): Promise<Set<string>> {
    const lock = await this.lockState();
    const out = new Set<string>((await this.tags.list(repo)).map((t) => t.digest));
    for await (const obj of this.store.list(paths.pinsPrefix(repo))) {
      const digest = paths.digestFromLinkKey(obj.key);
      if (digest) out.add(digest);
    }
    for (const prefix of [paths.tagHistoryRoot(repo), paths.prunedRoot(repo)]) {
      for await (const obj of this.store.list(prefix)) {
        const parsed = prefix === paths.prunedRoot(repo) ? paths.parsePrunedKey(repo, obj.key) : paths.parseTagHistoryKey(repo, obj.key);
        if (parsed && lock.isLocked(parsed.pushedAtMs)) out.add(parsed.digest);
      }
    }
    return out;
  }

  /**
   * Throws DENIED when a protected manifest of `repo` references the blob (index children's
   * included): removing the repository's link would make that point unpullable.
   */
  async assertBlobUnlinkable(repo: string, digest: string): Promise<void> {
    const manifest = await this.protectedHolderOf(repo, digest);
    if (manifest) {
      throw denied(`blob is part of recovery point ${manifest}, which is current, pinned or locked: it cannot be deleted from the repository`, {
        repository: repo,
        digest,
        manifest,
      });
    }
  }

  /**
   * Whether a re-push of the manifest a tag points at, pushed at `pushedAtMs`, records a new point:
   * when less than half the lock in force is left on the old one. Otherwise a daily backup of an
   * unchanged system would keep a point whose lock ran out, and the data the client just sent
   * could be deleted (move the tag, delete by digest) at once. So every push is locked for at
   * least half the lock, and an unchanged tag adds a point at most about twice per lock period.
   */
  async renewsPoint(pushedAtMs: number): Promise<boolean> {
    const lock = await this.lockState();
    const effective = lock.effectiveMs();
    return effective > 0 && lock.lockedUntil(pushedAtMs) - lock.nowMs < effective / 2;
  }

  /** Whether prune may drop this point now: not locked, not pinned (checked again at execution). */
  async mayPrune(point: { repo: string; digest: string; pushedAt: Date }, state: LockState): Promise<boolean> {
    if (state.isLocked(point.pushedAt.getTime())) return false;
    return (await this.store.stat(paths.pinKey(point.repo, point.digest))) === undefined;
  }
}

function denied(message: string, detail: Record<string, unknown>): RegistryError {
  return new RegistryError('DENIED', message, detail);
}
