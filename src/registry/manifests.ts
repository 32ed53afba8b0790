// Manifests: stored as content-addressed blobs (exact bytes received), linked per repository,
// optionally tagged, and indexed under their subject for the referrers API.
import { Buffer } from 'node:buffer';
import { LRUCache } from 'lru-cache';
import type { AuditRecorder } from '../audit/recorder.js';
import type { ObjectStore, OpOptions } from '../storage/driver.js';
import type { Blobs } from './blobs.js';
import { digestOf, parseDigest } from './digest.js';
import { STORE_PARALLELISM, forEachLimit } from './concurrency.js';
import { RegistryError, digestInvalid, manifestInvalid, manifestUnknown } from './errors.js';
import { isForeign, parseManifest, type Descriptor } from './manifest-format.js';
import type { Reference } from './names.js';
import { readAll, readJson, writeJson } from './objects.js';
import * as paths from './paths.js';
import type { Protection } from './protection.js';
import type { Referrers } from './referrers.js';
import type { Repositories } from './repositories.js';
import type { Tags } from './tags.js';
import { overran, type Tombstones } from './tombstones.js';

/** What a repository's manifest link records, so HEAD needs no read of the manifest itself. */
export interface ManifestLink {
  mediaType: string;
  size: number;
  subject?: string;
  linkedAt: string;
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  size: number;
}

export interface ManifestDeps {
  store: ObjectStore;
  blobs: Blobs;
  tags: Tags;
  referrers: Referrers;
  repositories: Repositories;
  tombstones: Tombstones;
  protection: Protection;
  audit: AuditRecorder;
  /** gc.sweepDelay: bounds how long a checked reference may go unwritten (see tombstones.ts). */
  sweepDelayMs: number;
  /** Links older than this are rewritten when claimed (half of gc.grace). */
  linkRefreshMs: number;
  /** manifests.maxReferences: descriptors (config, layers, child manifests) one manifest may name. */
  maxReferences: number;
}

export class Manifests {
  // Manifest bytes never change for a digest: cache them by digest, bounded by total size.
  private readonly bytesCache = new LRUCache<string, Buffer>({
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (b) => Math.max(b.length, 1),
  });

  constructor(private readonly deps: ManifestDeps) {}

  /**
   * Validates and stores a manifest. Every blob and child manifest it references must already be
   * in the repository (a missing subject is allowed, as OCI 1.1 requires).
   */
  async put(repo: string, reference: Reference, bytes: Buffer, contentType: string | undefined) {
    const { blobs, store, tags, referrers, repositories } = this.deps;
    const algorithm = reference.kind === 'digest' ? parseDigest(reference.digest).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (reference.kind === 'digest' && reference.digest !== digest) {
      throw digestInvalid('manifest digest does not match the reference', { expected: reference.digest, computed: digest });
    }
    const parsed = parseManifest(bytes, contentType);
    const count = parsed.blobs.length + parsed.manifests.length;
    if (count > this.deps.maxReferences) {
      // Refused before any store call: the work a push may cause is bounded by this limit.
      throw manifestInvalid(`the manifest names ${count} descriptors; this registry accepts at most ${this.deps.maxReferences} (manifests.maxReferences)`);
    }
    const checkedAt = Date.now();
    await this.assertReferencesPresent(repo, parsed.blobs, parsed.manifests);

    await blobs.putBytes(digest, bytes);
    this.bytesCache.set(digest, bytes);
    const link: ManifestLink = { mediaType: parsed.mediaType, size: bytes.length, linkedAt: new Date().toISOString() };
    if (parsed.subject) link.subject = parsed.subject.digest;
    // In the catalog before the link: the collector only looks at repositories it lists.
    await repositories.ensure(repo);
    await store.delete(paths.deletedManifestKey(repo, digest));
    await writeJson(store, paths.manifestLinkKey(repo, digest), link);
    if (parsed.subject) {
      const self: Descriptor = { mediaType: parsed.mediaType, digest, size: bytes.length };
      if (parsed.artifactType) self.artifactType = parsed.artifactType;
      if (parsed.annotations) self.annotations = parsed.annotations;
      await referrers.add(repo, parsed.subject.digest, self);
    }
    if (overran(checkedAt, this.deps.sweepDelayMs)) {
      // Slow store: a collector may have re-marked without seeing this manifest. Check again now
      // that the link is visible; if something went, take the manifest back rather than keep it
      // broken.
      try {
        // The manifest's own bytes too: a dedup against bytes the collector then removed.
        await blobs.putBytes(digest, bytes);
        await this.assertReferencesPresent(repo, parsed.blobs, parsed.manifests);
      } catch (err) {
        if (parsed.subject) await referrers.remove(repo, parsed.subject.digest, digest);
        await store.delete(paths.manifestLinkKey(repo, digest));
        throw err;
      }
    }
    if (reference.kind === 'tag') {
      await tags.set(repo, reference.tag, digest);
      this.deps.audit.record({ action: 'tag.push', repository: repo, tag: reference.tag, digest });
    }
    return { digest, subject: parsed.subject?.digest, mediaType: parsed.mediaType };
  }

  /** Resolves a reference to a manifest the repository holds, without reading its bytes. */
  async stat(repo: string, reference: Reference, options?: OpOptions): Promise<StoredManifest> {
    const digest = await this.resolve(repo, reference, options);
    const link = await readJson<ManifestLink>(this.deps.store, paths.manifestLinkKey(repo, digest), options);
    if (!link) throw manifestUnknown(reference.kind === 'tag' ? reference.tag : reference.digest);
    return { digest, mediaType: link.mediaType, size: link.size };
  }

  async get(repo: string, reference: Reference, options?: OpOptions): Promise<StoredManifest & { bytes: Buffer }> {
    const found = await this.stat(repo, reference, options);
    return { ...found, bytes: await this.bytes(found.digest, options) };
  }

  /**
   * By digest: removes the manifest from the repository, unless it is protected (a pinned or
   * locked recovery point, or the current point of a tag: protection.ts says why, as DENIED).
   * By tag: removes only the tag (OCI 1.1), unless it points at a locked point. Tag history
   * (recovery points) stays for retention.
   */
  async delete(repo: string, reference: Reference): Promise<void> {
    const { store, tags, referrers, protection, audit } = this.deps;
    if (reference.kind === 'tag') {
      if (!(await tags.readPointer(repo, reference.tag))) throw manifestUnknown(reference.tag);
      await protection.assertTagDeletable(repo, reference.tag);
      if (!(await tags.delete(repo, reference.tag))) throw manifestUnknown(reference.tag);
      audit.record({ action: 'tag.delete', repository: repo, tag: reference.tag });
      return;
    }
    const key = paths.manifestLinkKey(repo, reference.digest);
    const link = await readJson<ManifestLink>(store, key);
    if (!link) throw manifestUnknown(reference.digest);
    await protection.assertManifestDeletable(repo, reference.digest);
    if (link.subject) {
      await protection.assertReferrerDeletable(repo, reference.digest, link.subject);
      await referrers.remove(repo, link.subject, reference.digest);
    }
    // Marks the deletion as intended, so the collector does not relink the manifest for the
    // recovery points and pins that still name it.
    await writeJson(store, paths.deletedManifestKey(repo, reference.digest), { deletedAt: new Date().toISOString() });
    await store.delete(key);
    audit.record({ action: 'manifest.delete', repository: repo, digest: reference.digest });
  }

  /**
   * A manifest the repository holds, for a request that will rely on it (an index naming it as a
   * child, a restore): checks the link, clears the collector's tombstone on its bytes and reads
   * them from the store (like Blobs.claimInRepo), and rewrites a link older than half the
   * collector's grace so the collector's next look sees it as fresh.
   */
  async claim(repo: string, digest: string): Promise<boolean> {
    const { blobs, store } = this.deps;
    const key = paths.manifestLinkKey(repo, digest);
    const linked = await store.stat(key);
    if (!linked || !(await blobs.claim(digest))) return false;
    if (Date.now() - linked.modified.getTime() > this.deps.linkRefreshMs) {
      const link = await readJson<ManifestLink>(store, key);
      if (!link) return false;
      await writeJson(store, key, link);
    }
    return true;
  }

  async has(repo: string, digest: string, options?: OpOptions): Promise<boolean> {
    return (await this.deps.store.stat(paths.manifestLinkKey(repo, digest), options)) !== undefined;
  }

  private async resolve(repo: string, reference: Reference, options?: OpOptions): Promise<string> {
    if (reference.kind === 'digest') return reference.digest;
    const pointer = await this.deps.tags.current(repo, reference.tag, options);
    if (!pointer) throw manifestUnknown(reference.tag);
    return pointer.digest;
  }

  private async bytes(digest: string, options?: OpOptions): Promise<Buffer> {
    const cached = this.bytesCache.get(digest);
    if (cached) return cached;
    const index = await this.deps.blobs.stat(digest, options);
    if (!index) throw manifestUnknown(digest);
    const bytes = await readAll(await this.deps.blobs.open(index, undefined, options));
    this.bytesCache.set(digest, bytes);
    return bytes;
  }

  /**
   * Checks every distinct reference once (a digest named many times costs one check), at most
   * STORE_PARALLELISM at a time: a push's cost is bounded by its distinct descriptors, and it
   * never floods the store or this process's file descriptors.
   */
  private async assertReferencesPresent(repo: string, blobRefs: Descriptor[], manifestRefs: Descriptor[]) {
    const { blobs } = this.deps;
    const blobSizes = new Map<string, number>();
    for (const d of blobRefs) {
      if (isForeign(d)) continue;
      const seen = blobSizes.get(d.digest);
      if (seen !== undefined && seen !== d.size) {
        throw manifestInvalid(`descriptors of ${d.digest} disagree on its size (${seen} and ${d.size})`);
      }
      blobSizes.set(d.digest, d.size);
    }
    const childDigests = [...new Set(manifestRefs.map((d) => d.digest))];
    const missing: string[] = [];
    const checks: Array<() => Promise<void>> = [
      ...[...blobSizes].map(([digest, size]) => async () => {
        const index = await blobs.claimInRepo(repo, digest);
        if (!index) missing.push(digest);
        else if (index.size !== size) {
          throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', {
            reason: `descriptor size ${size} does not match blob size ${index.size}`,
            digest,
          });
        }
      }),
      ...childDigests.map((digest) => async () => {
        if (!(await this.claim(repo, digest))) missing.push(digest);
      }),
    ];
    await forEachLimit(checks, STORE_PARALLELISM, (check) => check());
    if (missing.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'manifest references a manifest or blob unknown to registry', {
        digests: missing.sort(),
      });
    }
  }
}
