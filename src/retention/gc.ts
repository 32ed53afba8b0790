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
import { STORE_PARALLELISM, forEachLimit } from './concurrency.js';
import { LeaseLostError, acquireLease } from './lease.js';
import { liveness, type Liveness, type LivenessRules } from './liveness.js';
import { loadSnapshot, type RepositorySnapshot } from './snapshot.js';
import { sweepUploadData } from './upload-data.js';

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
  /** Holder entries (docs/dedup.md) written for live layer links that had none (links older than the reverse index). */
  holdersBackfilled?: number;
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
  /** Keys under holders/, during the first mark of a run. */
  private holders: Set<string> | undefined;
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
        holdersBackfilled: 0,
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
      // Locked points are roots (docs/immutability.md), whatever the graces say.
      const lock = await registry.protection.lockState(startedMs);
      rules.locked = (pushedAtMs) => lock.isLocked(pushedAtMs);

      const ensureLease = () => {
        if (lease?.lost()) throw new LeaseLostError();
      };
      if (!dryRun) await this.recoverInterruptedRun();
      // Every holder entry, listed once (as many keys as layer links: the walk's own size), so a
      // link without one is found with no store call per link.
      if (!dryRun) {
        this.holders = new Set();
        for await (const obj of registry.store.list(paths.HOLDERS_PREFIX)) this.holders.add(obj.key);
      }
      const marked = await this.markAll(rules, report, { clean: true, phase: 'mark' });
      this.holders = undefined;
      const candidates = await this.candidates(marked, rules, report);
      if (dryRun) {
        report.blobsSwept = candidates.length;
        report.bytesFreed = candidates.reduce((n, c) => n + c.size, 0);
      } else {
        ensureLease();
        await this.placeTombstones(candidates);
        progress('wait');
        await new Promise((r) => setTimeout(r, options.sweepDelayMs));
        await options.beforeRemark?.();
        const remarked = await this.markAll(rules, report, { clean: false, phase: 'remark' });
        let done = 0;
        await forEachLimit(candidates, STORE_PARALLELISM, async (candidate) => {
          ensureLease();
          progress('sweep', done++, candidates.length);
          await this.sweep(candidate, remarked.has(candidate.digest), rules, report);
        });
      }
      this.options.onProgress?.({ phase: 'uploads', done: 0, total: 0 });
      const uploads = await sweepUploadData(registry.store, { olderThanMs: rules.youngAfterMs, dryRun });
      report.uploadPartsSwept = uploads.parts;
      report.uploadBytesFreed = uploads.bytes;
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
    const names = await this.registry.repositories.listWithPending();
    report.repositories = names.length;
    const marked = new Set<string>();
    for (const [i, name] of names.entries()) {
      this.options.onProgress?.({ phase: how.phase, done: i, total: names.length });
      // Both marks relink what a live manifest lost: a push may relink or claim between the first
      // mark's check of a link and its delete, and the re-mark puts that right in the same run.
      const { snapshot, live } = await this.markRepository(name, rules, report, !this.options.dryRun);
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
        // The dry run relinks nothing, but what an unlinked live manifest references must still
        // be marked.
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
      if (await registry.blobs.read(digest)) {
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
    // Each link is checked and removed on its own, so several at once (round trips to the store);
    // the phases stay in order: pruned entries go only with manifests removed before them.
    const removed = new Set<string>();
    const deadManifests = [...snapshot.manifests.values()].filter((m) => !live.manifests.has(m.digest));
    await forEachLimit(deadManifests, STORE_PARALLELISM, async (m) => {
      const key = paths.manifestLinkKey(name, m.digest);
      if (!(await stillOld(key))) return;
      report.manifestsRemoved++;
      removed.add(m.digest);
      if (dryRun) return;
      if (m.subject) await store.delete(paths.referrerKey(name, m.subject, m.digest));
      await store.delete(paths.pullKey(name, m.digest));
      await store.delete(key);
      this.options.logger?.debug({ repository: name, digest: m.digest }, 'manifest removed');
    });
    // An expired pruned point goes with its manifest, not before: while the link stays (young, or
    // still used elsewhere), the entry is what says the manifest was tagged once, so it is not
    // kept for ever as "untagged".
    const expired = snapshot.pruned.filter(
      (p) => p.prunedAtMs <= rules.restorableAfterMs && (!snapshot.manifests.has(p.digest) || removed.has(p.digest)),
    );
    report.prunedPointsExpired += expired.length;
    if (!dryRun) await forEachLimit(expired, STORE_PARALLELISM, (p) => store.delete(p.key));
    const deadLayers = [...snapshot.layerLinks.keys()].filter((digest) => !live.blobs.has(digest));
    await forEachLimit(deadLayers, STORE_PARALLELISM, async (digest) => {
      const key = paths.layerLinkKey(name, digest);
      if (!(await stillOld(key))) return;
      report.layerLinksRemoved++;
      if (dryRun) return;
      // Remembered for a grace: a push that HEADed the blob just before gets its link back.
      await writeJson(store, paths.unlinkedLayerKey(name, digest), { unlinkedAt: new Date().toISOString() });
      await store.delete(key);
      await store.delete(paths.holderKey(digest, name)); // the reverse index (docs/dedup.md)
    });
    // Links from before the reverse index: a live link gets its missing holder entry, so a HEAD
    // elsewhere can link the blob (docs/dedup.md). A link removed concurrently leaves an entry
    // without a link, which is harmless (the link is the truth).
    const holders = this.holders;
    if (!dryRun && holders) {
      const missing = [...snapshot.layerLinks.keys()].filter((d) => live.blobs.has(d) && !holders.has(paths.holderKey(d, name)));
      await forEachLimit(missing, STORE_PARALLELISM, async (digest) => {
        await writeJson(store, paths.holderKey(digest, name), { linkedAt: new Date().toISOString(), backfilled: true });
        report.holdersBackfilled = (report.holdersBackfilled ?? 0) + 1;
      });
    }
    if (!dryRun) {
      const stale: string[] = [];
      for await (const obj of store.list(paths.unlinkedLayersPrefix(name))) {
        if (obj.modified.getTime() <= rules.youngAfterMs) stale.push(obj.key);
      }
      await forEachLimit(stale, STORE_PARALLELISM, (key) => store.delete(key));
    }
  }

  /** Unmarked blobs older than the grace period. */
  private async candidates(marked: Set<string>, rules: LivenessRules, report: GcReport) {
    const { registry } = this;
    const unmarked: Array<{ digest: string; key: string }> = [];
    for await (const obj of registry.store.list(paths.BLOBS_PREFIX)) {
      const digest = paths.digestFromBlobIndexKey(obj.key);
      if (!digest) continue;
      report.blobsScanned++;
      if (marked.has(digest)) {
        report.blobsLive++;
        continue;
      }
      if (obj.modified.getTime() <= rules.youngAfterMs) unmarked.push({ digest, key: obj.key });
    }
    const out: Array<{ digest: string; size: number }> = [];
    await forEachLimit(unmarked, STORE_PARALLELISM, async ({ digest, key }) => {
      const index = await readJson<BlobIndex>(registry.store, key);
      if (index) out.push({ digest, size: index.size });
    });
    return out;
  }

  private async placeTombstones(candidates: Array<{ digest: string }>) {
    await forEachLimit(candidates, STORE_PARALLELISM, async (c, i) => {
      this.options.onProgress?.({ phase: 'tombstone', done: i, total: candidates.length });
      await this.registry.tombstones.place(c.digest, this.owner);
    });
  }

  /**
   * Deletes one candidate. Its index is saved in an intent object first, so a crash between the
   * index delete and the tombstone check leaves something the next run puts back; any failure
   * after the delete puts the index back at once.
   */
  private async sweep(candidate: { digest: string }, remarked: boolean, rules: LivenessRules, report: GcReport) {
    const { store, blobs, tombstones } = this.registry;
    const { digest } = candidate;
    const indexKey = paths.blobIndexKey(digest);
    const spare = async () => {
      if (await tombstones.heldBy(digest, this.owner)) await tombstones.remove(digest);
      report.blobsRescued++;
    };
    if (remarked || !(await tombstones.heldBy(digest, this.owner))) return spare();
    const info = await store.stat(indexKey);
    const index = info && info.modified.getTime() <= rules.youngAfterMs ? await readJson<BlobIndex>(store, indexKey) : undefined;
    if (!index) return spare(); // gone already, or committed afresh during the run
    const intent = paths.sweepIntentKey(digest);
    await writeJson(store, intent, index);
    await store.delete(indexKey);
    blobs.forget(digest);
    let used: boolean;
    try {
      await this.options.afterIndexDeleted?.(digest);
      used = !(await tombstones.heldBy(digest, this.owner));
    } catch (err) {
      await this.putBack(index);
      await store.delete(intent);
      throw err;
    }
    if (used) {
      // A request used the blob between the two checks and may rely on it: put it back.
      await this.putBack(index);
      await store.delete(intent);
      report.blobsRescued++;
      return;
    }
    await Promise.all(index.parts.map((p) => store.delete(p.key)));
    for await (const holder of store.list(paths.holdersPrefix(digest))) await store.delete(holder.key);
    await tombstones.remove(digest);
    await store.delete(intent);
    report.blobsSwept++;
    report.bytesFreed += index.size;
    this.options.logger?.debug({ digest, bytes: index.size }, 'blob deleted');
  }

  /** Restores a swept index, unless a new commit wrote one meanwhile or its data is incomplete. */
  private async putBack(index: BlobIndex): Promise<void> {
    const { store, blobs } = this.registry;
    const key = paths.blobIndexKey(index.digest);
    if ((await store.stat(key)) === undefined && (await blobs.partsPresent(index.parts))) await writeJson(store, key, index);
  }

  /**
   * What a run that died left behind: indexes it had deleted but not yet decided on (put back),
   * and tombstones (removed: this run places its own).
   */
  private async recoverInterruptedRun(): Promise<void> {
    const { store } = this.registry;
    for await (const obj of store.list(paths.SWEEP_INTENTS_PREFIX)) {
      const index = await readJson<BlobIndex>(store, obj.key);
      if (index) await this.putBack(index);
      await store.delete(obj.key);
    }
    for await (const obj of store.list(paths.TOMBSTONES_PREFIX)) await store.delete(obj.key);
  }

  private async bytesOf(digest: string): Promise<Buffer | undefined> {
    // A fresh read, not a claim: the collector must not clear tombstones itself.
    const index = await this.registry.blobs.read(digest);
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
