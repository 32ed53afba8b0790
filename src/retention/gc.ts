// The online garbage collector. Pushes and pulls go on while it runs, on any number of replicas.
//
//   1. mark      every repository: what is live (liveness.ts); remove what is not and is older
//                than gc.grace (manifest links, layer links, expired pruned points)
//   2. tombstone every blob that nothing marked and that is older than gc.grace
//   3. wait      gc.sweepDelay: longer than any request takes from checking a blob to writing
//                its reference (tombstones.ts)
//   4. re-mark   everything again: whatever a push linked meanwhile is live now
//   5. sweep     a candidate still unmarked and still tombstoned: index first, then check the
//                tombstone again (a use in between puts the index back), then the data
//   6. uploads   upload data no session and no blob refers to, older than gc.grace
//
// docs/retention-and-gc.md gives the argument why no blob a concurrent push relies on is lost.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { BlobIndex } from '../registry/blobs.js';
import { parseManifest } from '../registry/manifest-format.js';
import { readAll, readJson, writeJson } from '../registry/objects.js';
import * as paths from '../registry/paths.js';
import type { Registry } from '../registry/registry.js';
import { acquireLease } from './lease.js';
import { liveness, type Liveness, type LivenessRules } from './liveness.js';
import { loadSnapshot, type RepositorySnapshot } from './snapshot.js';

export interface GcOptions {
  /** Nothing written or linked more recently than this is collected. */
  graceMs: number;
  /** Wait between tombstones and sweep. */
  sweepDelayMs: number;
  /** Pruned points stay restorable (and their data kept) this long. */
  retentionGraceMs: number;
  deleteUntagged: boolean;
  /** Report what would go; change nothing. */
  dryRun?: boolean;
  onProgress?: (progress: GcProgress) => void;
  /** Awaited after the sweep delay, before the re-mark (tests interleave requests here). */
  beforeRemark?: () => Promise<void>;
  /** Awaited between deleting a candidate's index and checking its tombstone again (tests). */
  afterIndexDeleted?: (digest: string) => Promise<void>;
  logger?: Logger;
}

export type GcPhase = 'lease' | 'mark' | 'tombstone' | 'wait' | 'remark' | 'sweep' | 'uploads' | 'done';

export interface GcProgress {
  phase: GcPhase;
  done: number;
  total: number;
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  repositories: number;
  /** Manifests removed from repositories (no tag, point, pin or live manifest needs them). */
  manifestsRemoved: number;
  layerLinksRemoved: number;
  /** Pruned points whose grace ended: no longer restorable. */
  prunedPointsExpired: number;
  /** Links a live manifest needed and had lost (re-created). */
  linksRepaired: number;
  blobsScanned: number;
  blobsLive: number;
  /** Blobs deleted (or, in a dry run, that would be). */
  blobsSwept: number;
  bytesFreed: number;
  /** Candidates spared because a request used them or a push linked them during the run. */
  blobsRescued: number;
  uploadPartsSwept: number;
  uploadBytesFreed: number;
}

const MAX_REPAIR_ROUNDS = 3;

export class Collector {
  private readonly owner = randomUUID();

  constructor(
    private readonly registry: Registry,
    private readonly options: GcOptions,
  ) {}

  async run(): Promise<GcReport> {
    const { registry, options } = this;
    const dryRun = options.dryRun ?? false;
    const progress = (phase: GcPhase, done = 0, total = 0) => options.onProgress?.({ phase, done, total });
    progress('lease');
    const lease = dryRun ? undefined : await acquireLease(registry.store, this.owner);
    try {
      const startedMs = Date.now();
      const report: GcReport = {
        dryRun,
        startedAt: new Date(startedMs).toISOString(),
        finishedAt: '',
        repositories: 0,
        manifestsRemoved: 0,
        layerLinksRemoved: 0,
        prunedPointsExpired: 0,
        linksRepaired: 0,
        blobsScanned: 0,
        blobsLive: 0,
        blobsSwept: 0,
        bytesFreed: 0,
        blobsRescued: 0,
        uploadPartsSwept: 0,
        uploadBytesFreed: 0,
      };
      const rules: LivenessRules = {
        // A store with coarse times can make a just-written link look older: widen by that much.
        youngAfterMs: startedMs - options.graceMs - (registry.store.timeResolutionMs ?? 1000),
        restorableAfterMs: startedMs - options.retentionGraceMs,
        deleteUntagged: options.deleteUntagged,
      };

      const marked = await this.markAll(rules, report, { clean: true, phase: 'mark' });
      const candidates = await this.candidates(marked, rules, report);
      if (dryRun) {
        report.blobsSwept = candidates.length;
        report.bytesFreed = candidates.reduce((n, c) => n + c.size, 0);
      } else {
        await this.placeTombstones(candidates);
        progress('wait');
        await new Promise((r) => setTimeout(r, options.sweepDelayMs));
        await options.beforeRemark?.();
        const remarked = await this.markAll(rules, report, { clean: false, phase: 'remark' });
        let done = 0;
        for (const candidate of candidates) {
          progress('sweep', done++, candidates.length);
          await this.sweep(candidate, remarked.has(candidate.digest), rules, report);
        }
      }
      await this.sweepUploadData(rules, report, dryRun);
      report.finishedAt = new Date().toISOString();
      if (!dryRun) await writeJson(registry.store, paths.GC_REPORT_KEY, report);
      options.logger?.info({ ...report }, 'garbage collection finished');
      progress('done');
      return report;
    } finally {
      await lease?.release();
    }
  }

  /** Marks every repository; with `clean`, removes (dry run: counts) what is dead in them. */
  private async markAll(rules: LivenessRules, report: GcReport, how: { clean: boolean; phase: GcPhase }): Promise<Set<string>> {
    const names = await this.registry.repositories.list();
    report.repositories = names.length;
    const marked = new Set<string>();
    for (const [i, name] of names.entries()) {
      this.options.onProgress?.({ phase: how.phase, done: i, total: names.length });
      const { snapshot, live } = await this.markRepository(name, rules, report, how.clean && !this.options.dryRun);
      if (how.clean) await this.cleanRepository(snapshot, live, rules, report);
      for (const digest of live.blobs) marked.add(digest);
    }
    return marked;
  }

  /** Liveness of one repository, re-created links first if a live manifest lost some. */
  private async markRepository(name: string, rules: LivenessRules, report: GcReport, repair: boolean) {
    let snapshot = await loadSnapshot(this.registry, name);
    let live = liveness(snapshot, rules);
    for (let round = 0; round < MAX_REPAIR_ROUNDS && (live.unlinkedManifests.size > 0 || live.unlinkedBlobs.size > 0); round++) {
      if (!repair) {
        // The dry run and the re-mark relink nothing, but what an unlinked live manifest
        // references must still be marked.
        for (const digest of live.unlinkedManifests) for (const blob of await this.referencedBy(digest)) live.blobs.add(blob);
        break;
      }
      const repaired = await this.relink(name, live);
      report.linksRepaired += repaired;
      if (repaired === 0) break;
      snapshot = await loadSnapshot(this.registry, name);
      live = liveness(snapshot, rules);
    }
    return { snapshot, live };
  }

  private async relink(repo: string, live: Liveness): Promise<number> {
    const { registry } = this;
    let repaired = 0;
    for (const digest of live.unlinkedBlobs) {
      if (await registry.blobs.claim(digest)) {
        await registry.blobs.link(repo, digest);
        repaired++;
      }
    }
    for (const digest of live.unlinkedManifests) {
      const bytes = await this.bytesOf(digest);
      if (!bytes) continue;
      const parsed = parseManifest(bytes, undefined);
      await writeJson(registry.store, paths.manifestLinkKey(repo, digest), {
        mediaType: parsed.mediaType,
        size: bytes.length,
        ...(parsed.subject ? { subject: parsed.subject.digest } : {}),
        linkedAt: new Date().toISOString(),
      });
      repaired++;
    }
    return repaired;
  }

  /** Removes from a repository what no live manifest needs and nobody touched within the grace. */
  private async cleanRepository(snapshot: RepositorySnapshot, live: Liveness, rules: LivenessRules, report: GcReport) {
    const { store } = this.registry;
    const name = snapshot.name;
    const dryRun = this.options.dryRun ?? false;
    // Re-read each link's time just before deleting it: a push may have refreshed it since.
    const stillOld = async (key: string) => {
      const info = await store.stat(key);
      return info !== undefined && info.modified.getTime() <= rules.youngAfterMs;
    };
    for (const m of snapshot.manifests.values()) {
      if (live.manifests.has(m.digest)) continue;
      const key = paths.manifestLinkKey(name, m.digest);
      if (!(await stillOld(key))) continue;
      report.manifestsRemoved++;
      if (dryRun) continue;
      if (m.subject) await store.delete(paths.referrerKey(name, m.subject, m.digest));
      await store.delete(paths.pullKey(name, m.digest));
      await store.delete(key);
      this.options.logger?.debug({ repository: name, digest: m.digest }, 'manifest removed');
    }
    for (const p of snapshot.pruned) {
      if (p.prunedAtMs > rules.restorableAfterMs) continue;
      report.prunedPointsExpired++;
      if (!dryRun) await store.delete(p.key);
    }
    for (const digest of snapshot.layerLinks.keys()) {
      if (live.blobs.has(digest)) continue;
      const key = paths.layerLinkKey(name, digest);
      if (!(await stillOld(key))) continue;
      report.layerLinksRemoved++;
      if (!dryRun) await store.delete(key);
    }
  }

  /** Unmarked blobs older than the grace period. */
  private async candidates(marked: Set<string>, rules: LivenessRules, report: GcReport) {
    const { registry } = this;
    const out: Array<{ digest: string; size: number }> = [];
    for await (const obj of registry.store.list(paths.BLOBS_PREFIX)) {
      const digest = paths.digestFromBlobIndexKey(obj.key);
      if (!digest) continue;
      report.blobsScanned++;
      if (marked.has(digest)) {
        report.blobsLive++;
        continue;
      }
      if (obj.modified.getTime() > rules.youngAfterMs) continue;
      const index = await readJson<BlobIndex>(registry.store, obj.key);
      if (index) out.push({ digest, size: index.size });
    }
    return out;
  }

  private async placeTombstones(candidates: Array<{ digest: string }>) {
    for (const [i, c] of candidates.entries()) {
      this.options.onProgress?.({ phase: 'tombstone', done: i, total: candidates.length });
      await this.registry.tombstones.place(c.digest);
    }
  }

  private async sweep(candidate: { digest: string }, remarked: boolean, rules: LivenessRules, report: GcReport) {
    const { store, blobs, tombstones } = this.registry;
    const { digest } = candidate;
    const tombstone = paths.tombstoneKey(digest);
    const indexKey = paths.blobIndexKey(digest);
    const spare = async () => {
      await store.delete(tombstone);
      report.blobsRescued++;
    };
    if (remarked || !(await tombstones.exists(digest))) return spare();
    const info = await store.stat(indexKey);
    const index = info && info.modified.getTime() <= rules.youngAfterMs ? await readJson<BlobIndex>(store, indexKey) : undefined;
    if (!index) return spare(); // gone already, or committed afresh during the run
    await store.delete(indexKey);
    blobs.forget(digest);
    await this.options.afterIndexDeleted?.(digest);
    if (!(await tombstones.exists(digest))) {
      // A request used the blob between the two checks and may rely on it: put it back.
      if (await blobs.partsPresent(index.parts)) await writeJson(store, indexKey, index);
      report.blobsRescued++;
      return;
    }
    await Promise.all(index.parts.map((p) => store.delete(p.key)));
    await store.delete(tombstone);
    report.blobsSwept++;
    report.bytesFreed += index.size;
    this.options.logger?.debug({ digest, bytes: index.size }, 'blob deleted');
  }

  /**
   * Upload data that neither a session nor a blob refers to. Sessions are listed before blob
   * indexes: a commit writes its index before it deletes its session, so a part committed during
   * the scan is seen in one list or the other.
   */
  private async sweepUploadData(rules: LivenessRules, report: GcReport, dryRun: boolean) {
    const { store } = this.registry;
    this.options.onProgress?.({ phase: 'uploads', done: 0, total: 0 });
    const sessions = new Set<string>();
    for await (const obj of store.list(paths.UPLOADS_PREFIX)) {
      const id = paths.uploadIdFromStateKey(obj.key);
      if (id) sessions.add(id);
    }
    const referenced = new Set<string>();
    for await (const obj of store.list(paths.BLOBS_PREFIX)) {
      // Read afresh, not from the cache: a blob collected and pushed again has new parts.
      const index = paths.digestFromBlobIndexKey(obj.key) ? await readJson<BlobIndex>(store, obj.key) : undefined;
      for (const part of index?.parts ?? []) referenced.add(part.key);
    }
    for await (const obj of store.list(paths.DATA_PREFIX)) {
      const id = obj.key.slice(paths.DATA_PREFIX.length).split('/')[0]!;
      if (sessions.has(id) || referenced.has(obj.key) || obj.modified.getTime() > rules.youngAfterMs) continue;
      if (!dryRun) await store.delete(obj.key);
      report.uploadPartsSwept++;
      report.uploadBytesFreed += obj.size;
    }
  }

  private async bytesOf(digest: string): Promise<Buffer | undefined> {
    const index = await this.registry.blobs.claim(digest);
    return index ? readAll(await this.registry.blobs.open(index, undefined)) : undefined;
  }

  /** Everything a manifest reaches (children's references too), read from its bytes. */
  private async referencedBy(digest: string, seen = new Set<string>()): Promise<Set<string>> {
    if (seen.has(digest)) return seen;
    seen.add(digest);
    const bytes = await this.bytesOf(digest);
    if (!bytes) return seen;
    const parsed = parseManifest(bytes, undefined);
    for (const blob of parsed.blobs) seen.add(blob.digest);
    for (const child of parsed.manifests) await this.referencedBy(child.digest, seen);
    return seen;
  }
}
