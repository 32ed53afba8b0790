// Which manifests and blobs of a repository are live (pure: a snapshot and rules in, sets out).
// The collector keeps what is live; the prune dry run compares liveness before and after a plan.
//
// Roots: manifests a tag points at, recovery points, pins, pruned points still restorable, links
// written recently (a push in progress), and manifests pushed by digest that nothing else
// explains (untagged), unless gc.deleteUntagged. From the roots: index children, the blobs each
// manifest references, and the referrers of every live manifest. A referrer is never a root by
// itself: it lives and dies with its subject (signatures and SBOMs of pruned points go with them).
import type { RepositorySnapshot } from './snapshot.js';

export interface LivenessRules {
  /** Links written after this instant are roots (in-progress pushes); Infinity: none are. */
  youngAfterMs: number;
  /** Pruned points pruned after this instant are still restorable, so roots; Infinity: none. */
  restorableAfterMs: number;
  deleteUntagged: boolean;
  /** Whether retention.lock protects a point pushed then (protection.ts): such points are roots. */
  locked?: (pushedAtMs: number) => boolean;
}

export interface Liveness {
  manifests: Set<string>;
  /** Every live blob digest: configs, layers, and the live manifests' own bytes. */
  blobs: Set<string>;
  /** Live manifests the repository has no link for (a link lost to a race): to relink. */
  unlinkedManifests: Set<string>;
  /** Blobs live manifests reference that the repository has no link for: to relink. */
  unlinkedBlobs: Set<string>;
}

export function liveness(snapshot: RepositorySnapshot, rules: LivenessRules): Liveness {
  const { manifests } = snapshot;
  const tagged = new Set<string>([
    ...snapshot.current.values(),
    ...snapshot.history.map((p) => p.digest),
    ...snapshot.pruned.map((p) => p.digest),
  ]);
  const childOfAny = new Set([...manifests.values()].flatMap((m) => m.children));
  const referrersOf = new Map<string, string[]>();
  for (const m of manifests.values()) {
    if (m.subject) referrersOf.set(m.subject, [...(referrersOf.get(m.subject) ?? []), m.digest]);
  }

  const roots = new Set<string>([
    ...snapshot.current.values(),
    ...snapshot.history.map((p) => p.digest),
    ...snapshot.pins,
    ...snapshot.pruned.filter((p) => p.prunedAtMs > rules.restorableAfterMs).map((p) => p.digest),
    // A locked point keeps its data whatever happened to it: pruned, or its tag moved on.
    ...(rules.locked ? snapshot.pruned.filter((p) => rules.locked!(p.pushedAtMs)).map((p) => p.digest) : []),
  ]);
  for (const m of manifests.values()) {
    if (m.linkedAtMs > rules.youngAfterMs) roots.add(m.digest);
    const untagged = !tagged.has(m.digest) && !m.subject && !childOfAny.has(m.digest);
    if (untagged && !rules.deleteUntagged) roots.add(m.digest);
  }

  const live: Liveness = { manifests: new Set(), blobs: new Set(), unlinkedManifests: new Set(), unlinkedBlobs: new Set() };
  // A point or pin whose manifest was deleted through the API keeps nothing alive: it can no longer
  // be pulled. Any other root without a link lost it to a race (a restore or an index push during
  // a collection): it is live, and relinked like an index's child.
  const queue = [...roots].filter((d) => manifests.has(d) || !snapshot.deleted.has(d));
  while (queue.length > 0) {
    const digest = queue.pop()!;
    if (live.manifests.has(digest)) continue;
    live.manifests.add(digest);
    live.blobs.add(digest);
    const m = manifests.get(digest);
    if (!m) {
      live.unlinkedManifests.add(digest);
      continue;
    }
    for (const blob of m.blobs) {
      live.blobs.add(blob);
      if (!snapshot.layerLinks.has(blob)) live.unlinkedBlobs.add(blob);
    }
    queue.push(...m.children, ...(referrersOf.get(digest) ?? []));
  }
  for (const [digest, linkedAtMs] of snapshot.layerLinks) {
    if (linkedAtMs > rules.youngAfterMs) live.blobs.add(digest);
  }
  return live;
}

/** Rules for "what stays once every grace period has passed": the prune dry run's view. */
export function eventualRules(deleteUntagged: boolean): LivenessRules {
  return { youngAfterMs: Infinity, restorableAfterMs: Infinity, deleteUntagged };
}
