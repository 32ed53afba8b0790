// Pruning: applies the retention plan. Dropped points move to the pruned list (restorable for
// retention.grace); their data goes when the collector next runs after that. Nothing is deleted
// here, so a prune racing a push can at worst keep a point one round longer.
import type { Registry } from '../registry/registry.js';
import { planPrune, type PlanOptions, type PrunePlan, type RetentionPolicy } from './prune-plan.js';

export interface PruneResult extends PrunePlan {
  dryRun: boolean;
}

export async function prune(
  registry: Registry,
  policies: RetentionPolicy[],
  options: PlanOptions & { dryRun?: boolean; onPruned?: (repo: string, done: number, total: number) => void } = {},
): Promise<PruneResult> {
  const result = await planPrune(registry, policies, options);
  const dryRun = options.dryRun ?? false;
  if (!dryRun) {
    let done = 0;
    // Read once more, now: a lock raised since the plan counts.
    const lock = await registry.protection.lockState();
    for (const repo of result.repositories) {
      for (const decision of repo.decisions.filter((d) => !d.keep)) {
        if (!(await registry.recoveryPoints.prune(decision.point, lock))) {
          decision.keep = true;
          decision.reasons = ['locked'];
          result.droppedPoints--;
          result.keptPoints++;
          continue;
        }
        options.onPruned?.(repo.name, ++done, result.droppedPoints);
      }
    }
  }
  return { ...result, dryRun };
}
