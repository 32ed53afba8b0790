// What each recovery point costs: the bytes it reaches (its manifest, config and layers, index
// children and referrers) and the bytes only it reaches, across every repository (blobs are
// global, so a layer two systems share belongs to neither alone). Also the storage the points
// held now account for over time, as they arrived. Read-only: for the console and status pages.
//
// "Holders" are what keeps data alive (as in liveness.ts): each distinct digest a repository has
// as a recovery point, a pruned point not yet collected, a current tag, a pin or, unless
// gc.deleteUntagged, an untagged manifest. `uniqueBytes` of a point is what dropping every entry
// of its digest in its repository would free once the graces pass and the collector runs.
import type { Registry } from '../registry/registry.js';
import { STORE_PARALLELISM, forEachLimit } from './concurrency.js';
import { loadSnapshot, type RepositorySnapshot } from './snapshot.js';

export interface PointBytes {
  /** Bytes of every blob and manifest the point reaches. */
  size: number;
  /** Bytes no other holder, in any repository, reaches. */
  uniqueBytes: number;
}

export interface StorageSample {
  at: string;
  /** Recovery points (history entries and pruned-but-restorable ones) pushed up to `at`. */
  points: number;
  /** Each repository counting every blob its points reach. */
  logicalBytes: number;
  /** Each blob once: what the store holds for them. */
  uniqueBytes: number;
}

export interface PointUsage {
  /** repository -> digest -> bytes, for every digest that is a point (kept or pruned) there. */
  points: Map<string, Map<string, PointBytes>>;
  /** Oldest first, at most `maxSamples`. */
  history: StorageSample[];
}

export async function pointUsage(registry: Registry, options: { deleteUntagged: boolean; maxSamples?: number }): Promise<PointUsage> {
  const snapshots: RepositorySnapshot[] = [];
  for (const name of await registry.repositories.list()) snapshots.push(await loadSnapshot(registry, name));

  const reachOf = new Map<string, Map<string, Set<string>>>(); // repo -> digest -> reached digests
  const holders = new Map<string, number>(); // blob digest -> number of holders reaching it
  const allBlobs = new Set<string>();
  for (const snap of snapshots) {
    const reach = reachFunction(snap);
    const perDigest = new Map<string, Set<string>>();
    for (const digest of holderDigests(snap, options.deleteUntagged)) {
      const reached = reach(digest);
      perDigest.set(digest, reached);
      for (const blob of reached) {
        holders.set(blob, (holders.get(blob) ?? 0) + 1);
        allBlobs.add(blob);
      }
    }
    reachOf.set(snap.name, perDigest);
  }

  const sizes = new Map<string, number>();
  await forEachLimit([...allBlobs], STORE_PARALLELISM, async (digest) => {
    sizes.set(digest, (await registry.blobs.stat(digest))?.size ?? 0);
  });
  const sizeOf = (digest: string) => sizes.get(digest) ?? 0;

  const points = new Map<string, Map<string, PointBytes>>();
  for (const snap of snapshots) {
    const perDigest = reachOf.get(snap.name)!;
    const out = new Map<string, PointBytes>();
    for (const digest of new Set([...snap.history, ...snap.pruned].map((p) => p.digest))) {
      const reached = perDigest.get(digest) ?? new Set<string>();
      let size = 0;
      let uniqueBytes = 0;
      for (const blob of reached) {
        size += sizeOf(blob);
        if (holders.get(blob) === 1) uniqueBytes += sizeOf(blob);
      }
      out.set(digest, { size, uniqueBytes });
    }
    points.set(snap.name, out);
  }

  // Storage over time: walk the points in push order, counting each blob the first time a
  // repository (logical) or the registry (unique) sees it.
  const arrivals = snapshots
    .flatMap((snap) => [...snap.history, ...snap.pruned].map((p) => ({ repo: snap.name, digest: p.digest, at: p.pushedAtMs })))
    .sort((a, b) => a.at - b.at);
  const seenInRepo = new Set<string>();
  const seen = new Set<string>();
  const all: StorageSample[] = [];
  let logicalBytes = 0;
  let uniqueBytes = 0;
  arrivals.forEach((arrival, i) => {
    for (const blob of reachOf.get(arrival.repo)?.get(arrival.digest) ?? []) {
      const inRepo = `${arrival.repo}\0${blob}`;
      if (!seenInRepo.has(inRepo)) {
        seenInRepo.add(inRepo);
        logicalBytes += sizeOf(blob);
      }
      if (!seen.has(blob)) {
        seen.add(blob);
        uniqueBytes += sizeOf(blob);
      }
    }
    all.push({ at: new Date(arrival.at).toISOString(), points: i + 1, logicalBytes, uniqueBytes });
  });
  return { points, history: downsample(all, options.maxSamples ?? 500) };
}

/** The digests that keep data alive in one repository (the roots of liveness.ts, graces aside). */
function holderDigests(snap: RepositorySnapshot, deleteUntagged: boolean): Set<string> {
  const tagged = new Set([...snap.current.values(), ...snap.history.map((p) => p.digest), ...snap.pruned.map((p) => p.digest)]);
  const out = new Set([...tagged, ...snap.pins]);
  if (!deleteUntagged) {
    const children = new Set([...snap.manifests.values()].flatMap((m) => m.children));
    for (const m of snap.manifests.values()) {
      if (!tagged.has(m.digest) && !m.subject && !children.has(m.digest)) out.add(m.digest);
    }
  }
  // A manifest deleted through the API keeps nothing alive (liveness.ts does the same).
  for (const digest of out) if (snap.deleted.has(digest) && !snap.manifests.has(digest)) out.delete(digest);
  return out;
}

/** digest -> everything it keeps alive: itself, its blobs, its children and referrers, recursively. */
function reachFunction(snap: RepositorySnapshot): (digest: string) => Set<string> {
  const referrersOf = new Map<string, string[]>();
  for (const m of snap.manifests.values()) {
    if (m.subject) referrersOf.set(m.subject, [...(referrersOf.get(m.subject) ?? []), m.digest]);
  }
  return (root) => {
    const reached = new Set<string>();
    const visited = new Set<string>();
    const queue = [root];
    while (queue.length > 0) {
      const digest = queue.pop()!;
      if (visited.has(digest)) continue;
      visited.add(digest);
      reached.add(digest);
      const m = snap.manifests.get(digest);
      if (!m) continue;
      for (const blob of m.blobs) reached.add(blob);
      queue.push(...m.children, ...(referrersOf.get(digest) ?? []));
    }
    return reached;
  };
}

/** At most `max` samples: the last one of each of `max` equal time slices (the newest always kept). */
function downsample(samples: StorageSample[], max: number): StorageSample[] {
  if (samples.length <= max) return samples;
  const first = Date.parse(samples[0]!.at);
  const span = Date.parse(samples.at(-1)!.at) - first || 1;
  const bySlice = new Map<number, StorageSample>();
  for (const s of samples) bySlice.set(Math.min(max - 1, Math.floor(((Date.parse(s.at) - first) / span) * max)), s);
  return [...bySlice.values()];
}
