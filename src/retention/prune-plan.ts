// The prune plan (dry run): which recovery points each repository's policy drops, and how many
// bytes that frees: the blobs and manifests reachable only from dropped points, never those that
// a kept point (in any repository) still reaches. Blobs are global, so reachability is too.
import { parseManifest } from '../registry/manifest-format.js';
import * as paths from '../registry/paths.js';
import type { Registry } from '../registry/registry.js';
import { readAll } from '../storage/streams.js';
import { globToRegExp, plan, type Decision, type RetentionRules } from './policy.js';

export interface RetentionPolicy extends RetentionRules {
  /** Glob of repository names. */
  repositories: string;
}

export interface PrunePlan {
  repositories: Array<{ name: string; policy?: string; decisions: Decision[] }>;
  keptPoints: number;
  droppedPoints: number;
  /** Bytes of blobs and manifests only dropped points reach. */
  freedBytes: number;
}

export async function planPrune(registry: Registry, policies: RetentionPolicy[], now = new Date()): Promise<PrunePlan> {
  const compiled = policies.map((p) => ({ policy: p, re: globToRegExp(p.repositories) }));
  const result: PrunePlan = { repositories: [], keptPoints: 0, droppedPoints: 0, freedBytes: 0 };
  const keptRoots = new Set<string>();
  const droppedRoots = new Set<string>();

  for (const name of await registry.repositories.list()) {
    const points = await registry.recoveryPoints.list(name);
    const match = compiled.find((c) => c.re.test(name));
    const decisions: Decision[] = match
      ? plan(points, match.policy, now)
      : points.map((point) => ({ point, keep: true, reasons: [] }));
    result.repositories.push({ name, policy: match?.policy.repositories, decisions });
    result.keptPoints += decisions.filter((d) => d.keep).length;
    result.droppedPoints += decisions.filter((d) => !d.keep).length;

    const kept = new Set(decisions.filter((d) => d.keep).map((d) => d.point.digest));
    const dropped = new Set(decisions.filter((d) => !d.keep && !kept.has(d.point.digest)).map((d) => d.point.digest));
    const tagged = new Set(points.map((p) => p.digest));
    // What hangs off a dropped manifest (index children, referrers) goes with it, unless a kept
    // manifest reaches it too (the closure below decides that).
    const dependents = new Set<string>();
    for (const digest of dropped) {
      for (const child of await childManifests(registry, digest)) dependents.add(child);
      for (const referrer of await registry.referrers.list(name, digest)) dependents.add(referrer.digest);
    }
    for await (const obj of registry.store.list(paths.manifestLinksPrefix(name))) {
      const digest = paths.digestFromLinkKey(obj.key);
      if (!digest) continue;
      if (dropped.has(digest)) droppedRoots.add(digest);
      else if (kept.has(digest) || (!tagged.has(digest) && !dependents.has(digest))) keptRoots.add(digest);
      else droppedRoots.add(digest);
    }
  }

  const live = await closure(registry, keptRoots);
  for (const digest of await closure(registry, droppedRoots)) {
    if (!live.has(digest)) result.freedBytes += (await registry.blobs.stat(digest))?.size ?? 0;
  }
  return result;
}

/** Every manifest and blob reachable from `roots` (manifests), the roots included. */
async function closure(registry: Registry, roots: Iterable<string>): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const digest = queue.pop()!;
    if (seen.has(digest)) continue;
    seen.add(digest);
    const parsed = await readManifest(registry, digest);
    if (!parsed) continue;
    for (const blob of parsed.blobs) seen.add(blob.digest);
    for (const child of parsed.manifests) queue.push(child.digest);
  }
  return seen;
}

async function childManifests(registry: Registry, digest: string): Promise<string[]> {
  return (await readManifest(registry, digest))?.manifests.map((m) => m.digest) ?? [];
}

async function readManifest(registry: Registry, digest: string) {
  const index = await registry.blobs.stat(digest);
  if (!index || index.size > 4 * 1024 * 1024) return undefined;
  try {
    return parseManifest(await readAll(await registry.blobs.open(index, undefined)), undefined);
  } catch {
    return undefined; // a blob that is not a manifest has no references
  }
}
