// Retention as a pure function: recovery points and rules in, a decision per point out, each kept
// point with the rules that kept it. Rules are OR-ed: a point is kept if any rule keeps it.
// Calendar buckets follow restic's `forget --keep-*`: going from newest to oldest, the newest point
// of each hour/day/week/month/year is kept, for the N most recent buckets that have a point.
// Buckets are in UTC. Each tag of each repository is its own series.
import type { RecoveryPointRecord } from '../registry/recovery-points.js';

/** What the policy looks at in a recovery point (src/registry/recovery-points.ts). */
export type RecoveryPoint = Pick<RecoveryPointRecord, 'repo' | 'tag' | 'digest' | 'pushedAt' | 'lastPulledAt' | 'pinned' | 'current' | 'lockedUntil'>;

export interface RetentionRules {
  keepLast?: number;
  /** Milliseconds before `now`. */
  keepWithin?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** Glob patterns (`*` and `?`) of tags whose points are all kept. */
  keepTags?: readonly string[];
  /** Milliseconds: points pulled this recently are kept. */
  keepPulledWithin?: number;
}

export type Reason =
  | 'pinned'
  | 'locked'
  | 'current'
  | 'last'
  | 'within'
  | 'hourly'
  | 'daily'
  | 'weekly'
  | 'monthly'
  | 'yearly'
  | 'tag'
  | 'pulled';

export interface Decision<P extends RecoveryPoint = RecoveryPoint> {
  point: P;
  keep: boolean;
  reasons: Reason[];
}

const CALENDAR: Array<[Reason, keyof RetentionRules, (d: Date) => string]> = [
  ['hourly', 'keepHourly', (d) => d.toISOString().slice(0, 13)],
  ['daily', 'keepDaily', (d) => d.toISOString().slice(0, 10)],
  ['weekly', 'keepWeekly', isoWeek],
  ['monthly', 'keepMonthly', (d) => d.toISOString().slice(0, 7)],
  ['yearly', 'keepYearly', (d) => d.toISOString().slice(0, 4)],
];

export function plan<P extends RecoveryPoint>(points: P[], rules: RetentionRules, now: Date): Decision<P>[] {
  const decisions = new Map<RecoveryPoint, Set<Reason>>(points.map((p) => [p, new Set<Reason>()]));
  const keep = (p: RecoveryPoint, reason: Reason) => decisions.get(p)!.add(reason);
  const tagPatterns = (rules.keepTags ?? []).map(globToRegExp);

  for (const series of groupBySeries(points)) {
    // Newest first; ties broken by digest so the plan is deterministic.
    series.sort((a, b) => b.pushedAt.getTime() - a.pushedAt.getTime() || a.digest.localeCompare(b.digest));
    series.slice(0, rules.keepLast ?? 0).forEach((p) => keep(p, 'last'));
    for (const [reason, rule, bucketOf] of CALENDAR) {
      const limit = rules[rule] as number | undefined;
      if (!limit) continue;
      const seen = new Set<string>();
      for (const p of series) {
        if (seen.size >= limit) break;
        const bucket = bucketOf(p.pushedAt);
        if (seen.has(bucket)) continue;
        seen.add(bucket);
        keep(p, reason);
      }
    }
  }
  for (const p of points) {
    if (p.pinned) keep(p, 'pinned');
    if (p.lockedUntil && p.lockedUntil.getTime() > now.getTime()) keep(p, 'locked');
    if (p.current) keep(p, 'current');
    if (rules.keepWithin !== undefined && now.getTime() - p.pushedAt.getTime() <= rules.keepWithin) keep(p, 'within');
    if (tagPatterns.some((re) => re.test(p.tag))) keep(p, 'tag');
    if (rules.keepPulledWithin !== undefined && p.lastPulledAt && now.getTime() - p.lastPulledAt.getTime() <= rules.keepPulledWithin) {
      keep(p, 'pulled');
    }
  }
  return points.map((point) => {
    const reasons = [...decisions.get(point)!];
    return { point, keep: reasons.length > 0, reasons };
  });
}

function groupBySeries(points: RecoveryPoint[]): RecoveryPoint[][] {
  const series = new Map<string, RecoveryPoint[]>();
  for (const p of points) {
    const id = `${p.repo}:${p.tag}`;
    series.set(id, [...(series.get(id) ?? []), p]);
  }
  return [...series.values()];
}

/** ISO 8601 week, e.g. "2026-W48" (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(date: Date): string {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day); // the Thursday of this week decides its year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

export function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}
