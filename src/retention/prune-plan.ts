// The prune plan (dry run): which recovery points each repository's policy drops, and how many
// bytes that frees once the grace periods pass: the blobs and manifests that only dropped points
// reach, never those a kept point (in any repository) still reaches. Blobs are global, so
// reachability is too.
import type { RecoveryPointRecord } from '../registry/recovery-points.js';
import type { Registry } from '../registry/registry.js';
import { eventualRules, liveness } from './liveness.js';
import { globToRegExp, plan, type Decision, type RetentionRules } from './policy.js';
import { loadSnapshot, type RepositorySnapshot } from './snapshot.js';

export interface RetentionPolicy extends RetentionRules {
  /** Glob of repository names. */
  repositories: string;
}

export interface PrunePlan {
  repositories: Array<{ name: string; policy?: string; decisions: Array<Decision<RecoveryPointRecord>> }>;
  keptPoints: number;
  droppedPoints: number;
  /** Bytes of blobs and manifests only dropped points reach. */
  freedBytes: number;
}

export interface PlanOptions {
  now?: Date;
  deleteUntagged?: boolean;
}

export async function planPrune(registry: Registry, policies: RetentionPolicy[], options: PlanOptions = {}): Promise<PrunePlan> {
  const now = options.now ?? new Date();
  const rules = eventualRules(options.deleteUntagged ?? false);
  const compiled = policies.map((p) => ({ policy: p, re: globToRegExp(p.repositories) }));
  const result: PrunePlan = { repositories: [], keptPoints: 0, droppedPoints: 0, freedBytes: 0 };
  const liveBefore = new Set<string>();
  const liveAfter = new Set<string>();

  for (const name of await registry.repositories.list()) {
    const points = await registry.recoveryPoints.list(name);
    const match = compiled.find((c) => c.re.test(name));
    const decisions: Array<Decision<RecoveryPointRecord>> = match
      ? plan(points, match.policy, now)
      : points.map((point) => ({ point, keep: true, reasons: [] }));
    result.repositories.push({ name, policy: match?.policy.repositories, decisions });
    result.keptPoints += decisions.filter((d) => d.keep).length;
    result.droppedPoints += decisions.filter((d) => !d.keep).length;

    const snapshot = await loadSnapshot(registry, name);
    const droppedKeys = new Set(decisions.filter((d) => !d.keep).map((d) => d.point.key));
    // After the prune, dropped points sit in the pruned list (tagged once, so not "untagged").
    const after: RepositorySnapshot = {
      ...snapshot,
      history: snapshot.history.filter((p) => !droppedKeys.has(p.key)),
      pruned: [...snapshot.pruned, ...snapshot.history.filter((p) => droppedKeys.has(p.key)).map((p) => ({ ...p, prunedAtMs: now.getTime() }))],
    };
    for (const d of liveness(snapshot, rules).blobs) liveBefore.add(d);
    for (const d of liveness(after, rules).blobs) liveAfter.add(d);
  }

  for (const digest of liveBefore) {
    if (!liveAfter.has(digest)) result.freedBytes += (await registry.blobs.stat(digest))?.size ?? 0;
  }
  return result;
}
