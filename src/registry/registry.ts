// The registry domain assembled over one object store. No HTTP here, and no knowledge of which
// driver sits underneath.
import { ForwardingRecorder, type AuditRecorder } from '../audit/recorder.js';
import type { ObjectStore } from '../storage/driver.js';
import { Blobs } from './blobs.js';
import { RegistryError } from './errors.js';
import { holderCandidates } from './holders.js';
import { parseManifest } from './manifest-format.js';
import { Manifests } from './manifests.js';
import { readBytes } from './objects.js';
import * as paths from './paths.js';
import { Protection } from './protection.js';
import { RecoveryPoints } from './recovery-points.js';
import { Referrers } from './referrers.js';
import { Repositories } from './repositories.js';
import { Tags } from './tags.js';
import { Tombstones, overran } from './tombstones.js';
import { Uploads } from './uploads.js';

export const DEFAULT_MAX_REFERENCES = 1000;
/** Readable holders whose link is checked before a HEAD gives up (stale holder entries). */
const HOLDERS_VERIFIED = 8;

export interface RegistryOptions {
  maxManifestBytes: number;
  /** Descriptors one manifest may name (manifests.maxReferences); default 1,000. */
  maxManifestReferences?: number;
  tagCacheTtlMs: number;
  blobIndexCacheEntries: number;
  /** The collector spares anything younger than this (gc.grace). */
  gcGraceMs: number;
  /** The collector's wait between tombstones and sweep (gc.sweepDelay). */
  gcSweepDelayMs: number;
}

export class Registry {
  readonly blobs: Blobs;
  readonly repositories: Repositories;
  readonly tags: Tags;
  readonly referrers: Referrers;
  readonly manifests: Manifests;
  readonly uploads: Uploads;
  readonly recoveryPoints: RecoveryPoints;
  readonly tombstones: Tombstones;
  /** What may not be destroyed: pins, current points, the lock (docs/immutability.md). */
  readonly protection: Protection;
  /** Where the domain's records go; the server points it at the audit trail. */
  readonly audit = new ForwardingRecorder();
  private probeWritten = false;

  /** Sends the domain's audit records to `recorder` (the server's trail). */
  setAudit(recorder: AuditRecorder): void {
    this.audit.target = recorder;
  }

  constructor(
    readonly store: ObjectStore,
    readonly options: RegistryOptions,
  ) {
    this.tombstones = new Tombstones(store);
    this.blobs = new Blobs(store, this.tombstones, {
      cacheEntries: options.blobIndexCacheEntries,
      linkRefreshMs: options.gcGraceMs / 2,
    });
    this.repositories = new Repositories(store);
    this.tags = new Tags(store, options.tagCacheTtlMs);
    this.protection = new Protection(store, this.tags, this.audit);
    this.tags.renewPoint = (pushedAtMs) => this.protection.renewsPoint(pushedAtMs);
    this.referrers = new Referrers(store);
    this.manifests = new Manifests({
      store,
      blobs: this.blobs,
      tags: this.tags,
      referrers: this.referrers,
      repositories: this.repositories,
      tombstones: this.tombstones,
      protection: this.protection,
      audit: this.audit,
      sweepDelayMs: options.gcSweepDelayMs,
      linkRefreshMs: options.gcGraceMs / 2,
      maxReferences: options.maxManifestReferences ?? DEFAULT_MAX_REFERENCES,
    });
    this.uploads = new Uploads(store, this.blobs, (repo, digest) => this.linkBlob(repo, digest), options.gcSweepDelayMs);
    this.protection.referencesOf = (repo, digest) => this.references(repo, digest);
    this.recoveryPoints = new RecoveryPoints(store, this.tags, this.manifests, this.protection, this.audit);
  }

  /** Makes a stored blob readable in a repository (after upload, mount or dedup). */
  async linkBlob(repo: string, digest: string): Promise<void> {
    await this.blobs.link(repo, digest);
    await this.repositories.ensure(repo);
  }

  /**
   * Links a blob the registry already holds into `repo` when the caller may read it somewhere
   * else (`mayRead` decides, per repository holding it), so a client pushing an image whose layers
   * another system pushed need not send them again. Returns the blob when linked.
   *
   * The cost does not grow with the number of repositories (the blob's holders are listed from
   * its reverse index), and a blob that is absent and one held only where the caller may not read
   * cost the same store calls (docs/dedup.md): only a readable holder leads to more.
   */
  async linkExisting(repo: string, digest: string, mayRead: (holder: string) => boolean | Promise<boolean>) {
    const claimedAt = Date.now();
    const { stored, holders } = await holderCandidates(this.store, digest);
    if (!stored) return undefined;
    const readable: string[] = [];
    for (const holder of holders) if (holder !== repo && (await mayRead(holder))) readable.push(holder);
    // A holder entry outlives its link when a link write failed halfway: the link decides.
    for (const holder of readable.slice(0, HOLDERS_VERIFIED)) {
      if (!(await this.blobs.isLinked(holder, digest))) continue;
      const claimed = await this.blobs.claim(digest);
      if (!claimed) return undefined;
      // Only the link: a HEAD must not make a repository appear in the catalog (the push's
      // manifest does that), but the collector must see the link, hence the pending marker.
      await this.repositories.markPending(repo);
      await this.blobs.link(repo, digest);
      if (overran(claimedAt, this.options.gcSweepDelayMs) && !(await this.blobs.claim(digest))) return undefined;
      return claimed;
    }
    return undefined;
  }

  /**
   * Cross-repository mount: links the blob into `repo` when it is readable in `from`.
   * Returns false when it is not, and the client must upload it.
   */
  async mount(repo: string, from: string, digest: string): Promise<boolean> {
    if (!(await this.blobs.claimInRepo(from, digest))) return false;
    await this.linkBlob(repo, digest);
    return true;
  }

  /**
   * Removes a repository's link to a blob (distribution API DELETE), unless a current, pinned or
   * locked point of the repository uses it (DENIED).
   */
  async unlinkBlob(repo: string, digest: string): Promise<void> {
    await this.protection.assertBlobUnlinkable(repo, digest);
    await this.blobs.unlink(repo, digest);
    this.audit.record({ action: 'blob.delete', repository: repo, digest });
  }

  /** Every blob a manifest of `repo` reaches (config, layers, index children's too). */
  private async references(repo: string, digest: string, seen = new Set<string>()): Promise<Set<string>> {
    if (seen.has(digest)) return seen;
    seen.add(digest);
    let bytes: Buffer;
    try {
      bytes = (await this.manifests.get(repo, { kind: 'digest', digest })).bytes;
    } catch (err) {
      // Not held (deleted, or never linked here): references nothing here. Any other failure (the
      // store did not answer, a read failed) must not count as "references nothing": protection
      // asks this before unlinking, so it fails closed.
      if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') return seen;
      throw err;
    }
    const parsed = parseManifest(bytes, undefined);
    for (const b of parsed.blobs) seen.add(b.digest);
    for (const m of parsed.manifests) await this.references(repo, m.digest, seen);
    return seen;
  }

  /**
   * Whether the store answers and still holds what this process wrote: one read of a probe
   * object, written the first time. Fails when the store is unreachable, refuses the credentials,
   * or lost its data (a filesystem root that went away). For health checks; throws nothing.
   */
  async storeReachable(): Promise<boolean> {
    try {
      if (!this.probeWritten) {
        await this.store.put(paths.HEALTH_PROBE_KEY, Buffer.from('ok'));
        this.probeWritten = true;
      }
      // Read back, not only stat'ed: a store whose reads fail (a key that cannot decrypt what it
      // holds) is not healthy.
      return (await readBytes(this.store, paths.HEALTH_PROBE_KEY))?.toString() === 'ok';
    } catch {
      return false;
    }
  }
}
