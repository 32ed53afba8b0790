// Where the retention policies come from: the ones set through the admin API (stored in the
// object store, so every replica sees them) win over the ones in the configuration file.
import { z } from 'zod';
import type { AuditRecorder } from '../audit/recorder.js';
import { retentionPolicySchema } from '../config/schema.js';
import { formatDuration } from '../config/units.js';
import { readJson, writeJson } from '../registry/objects.js';
import { RETENTION_POLICIES_KEY } from '../registry/paths.js';
import type { ObjectStore } from '../storage/driver.js';
import type { RetentionPolicy } from './prune-plan.js';

export type PolicySource = 'config' | 'api';

/** A policy as operators write it (durations as text, e.g. "7d"). */
export type PolicyText = z.input<typeof retentionPolicySchema>;

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

const policyList = z.array(retentionPolicySchema);

export class RetentionPolicies {
  constructor(
    private readonly store: ObjectStore,
    private readonly fromConfig: RetentionPolicy[],
    private readonly audit?: AuditRecorder,
  ) {}

  /** The policies in force and where they come from. */
  async current(): Promise<{ source: PolicySource; policies: RetentionPolicy[] }> {
    const stored = await readJson<{ policies: unknown }>(this.store, RETENTION_POLICIES_KEY);
    if (!stored) return { source: 'config', policies: this.fromConfig };
    return { source: 'api', policies: parsePolicies(stored.policies) };
  }

  /** Validates and stores policies; a bad one is refused with the field it is about. */
  async replace(policies: unknown): Promise<RetentionPolicy[]> {
    const parsed = parsePolicies(policies);
    await writeJson(this.store, RETENTION_POLICIES_KEY, { policies: parsed.map(toText), updatedAt: new Date().toISOString() });
    this.audit?.record({ action: 'policy.change', detail: { policies: parsed.map(toText) } });
    return parsed;
  }

  /** Forgets the API's policies: the configuration's apply again. */
  async reset(): Promise<void> {
    await this.store.delete(RETENTION_POLICIES_KEY);
    this.audit?.record({ action: 'policy.change', detail: { reset: true } });
  }
}

export function parsePolicies(value: unknown): RetentionPolicy[] {
  const result = policyList.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new PolicyError(`policies.${issue.path.join('.')}: ${issue.message}`);
}

/** The operator's form of a policy: durations back to text. */
export function toText(policy: RetentionPolicy): PolicyText {
  const text: Record<string, unknown> = { ...policy };
  for (const key of ['keepWithin', 'keepPulledWithin'] as const) {
    if (policy[key] !== undefined) text[key] = formatDuration(policy[key]);
  }
  return text as PolicyText;
}
