// Global content-addressed blobs and the per-repository links that make them visible.
// A blob is its index (size + the upload parts that hold its bytes); committing a blob writes only
// that small index, whatever the blob's size, and a blob that already exists is never stored twice.
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { canPresign, type ByteRange, type ObjectStore, type OpOptions } from '../storage/driver.js';
import { isNotFound } from '../storage/errors.js';
import { blobUnknown } from './errors.js';
import { readJson, writeJson } from './objects.js';
import * as paths from './paths.js';
import type { Tombstones } from './tombstones.js';

export interface BlobPart {
  key: string;
  size: number;
}

export interface BlobIndex {
  digest: string;
  size: number;
  parts: BlobPart[];
  createdAt: string;
}

export type CommitOutcome = 'created' | 'deduplicated';

export class Blobs {
  private readonly indexCache: LRUCache<string, BlobIndex>;

  constructor(
    private readonly store: ObjectStore,
    private readonly tombstones: Tombstones,
    options: { cacheEntries?: number; linkRefreshMs?: number } = {},
  ) {
    // Blob indexes are immutable until the blob is collected, so they are cached without expiry;
    // claim() checks the store itself, since another replica's collector may have removed one.
    this.indexCache = new LRUCache({ max: options.cacheEntries ?? 10_000 });
    this.linkRefreshMs = options.linkRefreshMs ?? 0;
  }

  /** Links older than this are rewritten when used, so the collector's grace covers the use. */
  private readonly linkRefreshMs: number;

  /**
   * The blob, for a request that will rely on it existing (a client skipping an upload, a mount,
   * a manifest's reference): clears a collector's tombstone first, then reads the index from the
   * store itself (another replica's collector may have removed it, or it was pushed again with
   * new parts). The order matters: docs/retention-and-gc.md.
   */
  async claim(digest: string, options?: OpOptions): Promise<BlobIndex | undefined> {
    await this.tombstones.clear(digest, options);
    return this.read(digest, options);
  }

  /**
   * claim() as seen from a repository: undefined unless linked there (and then the tombstone is
   * left alone, so probing digests in one repository cannot keep other repositories' garbage).
   * Refreshes a link older than half the collector's grace.
   */
  async claimInRepo(repo: string, digest: string, options?: OpOptions): Promise<BlobIndex | undefined> {
    let link = await this.store.stat(paths.layerLinkKey(repo, digest), options);
    if (!link) {
      // The collector may have just removed the link (it was unused and old) while this client
      // HEADed the blob and now references it: a link removed within the grace comes back.
      const unlinked = await this.store.stat(paths.unlinkedLayerKey(repo, digest), options);
      if (!unlinked || Date.now() - unlinked.modified.getTime() > 2 * this.linkRefreshMs) return undefined;
      if (!(await this.claim(digest, options))) return undefined;
      await this.link(repo, digest, options);
      link = { key: paths.layerLinkKey(repo, digest), size: 0, modified: new Date() };
    }
    const index = await this.claim(digest, options);
    if (!index) return undefined;
    if (Date.now() - link.modified.getTime() > this.linkRefreshMs) await this.link(repo, digest, options);
    return index;
  }

  /** The index as the store has it now (not the cache), and the cache updated to match. */
  async read(digest: string, options?: OpOptions): Promise<BlobIndex | undefined> {
    const index = await readJson<BlobIndex>(this.store, paths.blobIndexKey(digest), options);
    if (index) this.indexCache.set(digest, index);
    else this.indexCache.delete(digest);
    return index;
  }

  async stat(digest: string, options?: OpOptions): Promise<BlobIndex | undefined> {
    const cached = this.indexCache.get(digest);
    if (cached) return cached;
    const index = await readJson<BlobIndex>(this.store, paths.blobIndexKey(digest), options);
    if (index) this.indexCache.set(digest, index);
    return index;
  }

  /**
   * Streams the blob (or an inclusive range of it) across its parts. The first part is opened
   * before this returns, so a missing blob or an unavailable store is an error the caller can
   * still answer properly, not a connection cut after the headers.
   */
  async open(index: BlobIndex, range: ByteRange | undefined, options: OpOptions = {}): Promise<Readable> {
    const start = range?.start ?? 0;
    const end = range?.end ?? index.size - 1;
    const pieces: Array<{ key: string; range: ByteRange }> = [];
    let partStart = 0;
    for (const part of index.parts) {
      const partEnd = partStart + part.size - 1;
      if (part.size > 0 && partEnd >= start && partStart <= end) {
        pieces.push({ key: part.key, range: { start: Math.max(start, partStart) - partStart, end: Math.min(end, partEnd) - partStart } });
      }
      partStart += part.size;
    }
    const openPiece = async (piece: { key: string; range: ByteRange }) => {
      try {
        return await this.store.get(piece.key, piece.range, options);
      } catch (err) {
        if (isNotFound(err)) {
          this.indexCache.delete(index.digest);
          throw blobUnknown(index.digest);
        }
        throw err;
      }
    };
    const first = pieces.length > 0 ? await openPiece(pieces[0]!) : undefined;
    // One piece (a blob pushed in one PATCH): the store's own stream, with nothing in between.
    if (first && pieces.length === 1) return first;
    async function* bytes(): AsyncGenerator<Buffer> {
      if (first) yield* first;
      for (const piece of pieces.slice(1)) yield* await openPiece(piece);
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  /**
   * A URL the client can fetch the whole blob from directly, when the store can presign and the
   * blob is one object (a blob uploaded in several chunks is several objects: it is served here).
   */
  async directUrl(index: BlobIndex, expirySeconds: number): Promise<string | undefined> {
    const only = index.parts.length === 1 ? index.parts[0] : undefined;
    if (!only || !canPresign(this.store)) return undefined;
    return this.store.presignedGetUrl(only.key, expirySeconds);
  }

  /**
   * Makes uploaded parts the content of `digest`. The caller has verified the digest. When the
   * blob exists already nothing is written ('deduplicated'): the caller deletes its parts once
   * its link to the blob is safely in place (see Uploads.complete).
   */
  async commit(digest: string, size: number, parts: BlobPart[], options?: OpOptions): Promise<CommitOutcome> {
    const existing = await this.claim(digest, options);
    if (existing && existing.size === size && (await this.partsPresent(existing.parts))) return 'deduplicated';
    const index: BlobIndex = { digest, size, parts, createdAt: new Date().toISOString() };
    await writeJson(this.store, paths.blobIndexKey(digest), index, options);
    this.indexCache.set(digest, index);
    return 'created';
  }

  /** Stores small content (a manifest) as a blob, unless it is stored already. */
  async putBytes(digest: string, bytes: Buffer, options?: OpOptions): Promise<CommitOutcome> {
    const existing = await this.claim(digest, options);
    if (existing && (await this.partsPresent(existing.parts))) return 'deduplicated';
    const key = paths.uploadPartKey(randomUUID(), 0, randomBytes(4).toString('hex'));
    await this.store.put(key, bytes, { ...options, size: bytes.length });
    return this.commit(digest, bytes.length, [{ key, size: bytes.length }], options);
  }

  async isLinked(repo: string, digest: string, options?: OpOptions): Promise<boolean> {
    return (await this.store.stat(paths.layerLinkKey(repo, digest), options)) !== undefined;
  }

  /** The blob as seen from a repository: undefined unless linked there and stored. */
  async statInRepo(repo: string, digest: string, options?: OpOptions): Promise<BlobIndex | undefined> {
    const [linked, index] = await Promise.all([this.isLinked(repo, digest, options), this.stat(digest, options)]);
    return linked ? index : undefined;
  }

  /** The link, and its reverse (holders/): a holder without a link is harmless, never used alone. */
  async link(repo: string, digest: string, options?: OpOptions): Promise<void> {
    const linkedAt = new Date().toISOString();
    await Promise.all([
      writeJson(this.store, paths.layerLinkKey(repo, digest), { linkedAt }, options),
      writeJson(this.store, paths.holderKey(digest, repo), { linkedAt }, options),
    ]);
  }

  async unlink(repo: string, digest: string, options?: OpOptions): Promise<void> {
    await this.store.delete(paths.layerLinkKey(repo, digest), options);
    await this.store.delete(paths.holderKey(digest, repo), options);
  }

  /** Drops a cached index, e.g. after the collector removed the blob. */
  forget(digest: string): void {
    this.indexCache.delete(digest);
  }

  /** True when every part exists: an index whose data is (partly) gone must not be reused. */
  async partsPresent(parts: BlobPart[]): Promise<boolean> {
    const found = await Promise.all(parts.map(async (p) => (await this.store.stat(p.key)) !== undefined));
    return found.every(Boolean);
  }

  /** Removes an index this process just wrote for `parts`, if it still describes them. */
  async retract(digest: string, parts: BlobPart[]): Promise<void> {
    this.indexCache.delete(digest);
    const index = await readJson<BlobIndex>(this.store, paths.blobIndexKey(digest));
    if (index && index.parts.length === parts.length && index.parts.every((p, i) => p.key === parts[i]!.key)) {
      await this.store.delete(paths.blobIndexKey(digest));
    }
  }
}
