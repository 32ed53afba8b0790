import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoWeek, plan, type RecoveryPoint, type RetentionRules } from '../../src/retention/policy.js';

const DAY = 86_400_000;
const NOW = new Date('2026-11-23T12:00:00Z');

/** `days` days of pushes of one tag, one at 02:00 UTC each day, newest yesterday; the newest is current. */
function daily(days: number, tag = 'latest', repo = 'site/moodle', extraPerDay = 0): RecoveryPoint[] {
  const points: RecoveryPoint[] = [];
  for (let d = 1; d <= days; d++) {
    for (let k = 0; k <= extraPerDay; k++) {
      const pushedAt = new Date(Date.UTC(2026, 10, 23 - d, 2 + k));
      points.push({ repo, tag, digest: `sha256:${tag}-${d}-${k}`, pushedAt, pinned: false, current: d === 1 && k === extraPerDay });
    }
  }
  return points;
}

const kept = (points: RecoveryPoint[], rules: RetentionRules) =>
  plan(points, rules, NOW)
    .filter((d) => d.keep)
    .map((d) => d.point.digest);

describe('retention rules on 400 days of daily pushes', () => {
  const history = daily(400);

  it('keep last N keeps the N newest', () => {
    expect(kept(history, { keepLast: 3 })).toEqual(['sha256:latest-1-0', 'sha256:latest-2-0', 'sha256:latest-3-0']);
  });

  it('keeps only the current point when no rule applies', () => {
    expect(kept(history, {})).toEqual(['sha256:latest-1-0']);
  });

  it('keep daily N keeps the newest point of each of the N most recent days', () => {
    const twicePerDay = daily(20, 'latest', 'site/moodle', 1); // pushes at 02:00 and 03:00
    expect(kept(twicePerDay, { keepDaily: 3 })).toEqual(['sha256:latest-1-1', 'sha256:latest-2-1', 'sha256:latest-3-1']);
  });

  it('keep weekly, monthly and yearly keep one point per calendar bucket', () => {
    const weekly = plan(history, { keepWeekly: 4 }, NOW).filter((d) => d.reasons.includes('weekly'));
    expect(weekly.map((d) => isoWeek(d.point.pushedAt))).toEqual(['2026-W47', '2026-W46', '2026-W45', '2026-W44']);
    // The newest point of each week is its last pushed day (Sunday), except the current week.
    expect(weekly.map((d) => d.point.pushedAt.toISOString().slice(0, 10))).toEqual(['2026-11-22', '2026-11-15', '2026-11-08', '2026-11-01']);
    const monthly = plan(history, { keepMonthly: 12 }, NOW).filter((d) => d.reasons.includes('monthly'));
    expect(monthly.map((d) => d.point.pushedAt.toISOString().slice(0, 10))).toEqual([
      '2026-11-22', '2026-10-31', '2026-09-30', '2026-08-31', '2026-07-31', '2026-06-30',
      '2026-05-31', '2026-04-30', '2026-03-31', '2026-02-28', '2026-01-31', '2025-12-31',
    ]);
    const yearly = plan(history, { keepYearly: 5 }, NOW).filter((d) => d.reasons.includes('yearly'));
    expect(yearly.map((d) => d.point.pushedAt.toISOString().slice(0, 10))).toEqual(['2026-11-22', '2025-12-31']);
  });

  it('keep within a duration keeps every point that recent', () => {
    // Day d was pushed d days and 10 hours before NOW: days 1..9 are within 10 days, day 10 is not.
    expect(kept(history, { keepWithin: 10 * DAY })).toEqual(Array.from({ length: 9 }, (_, i) => `sha256:latest-${i + 1}-0`));
    expect(kept(history, { keepWithin: 10 * DAY + 10 * 3_600_000 })).toHaveLength(10);
  });

  it('OR-s rules and records every reason', () => {
    const decisions = plan(history, { keepLast: 2, keepDaily: 7, keepWeekly: 4, keepMonthly: 6 }, NOW);
    const keptPoints = decisions.filter((d) => d.keep);
    // 7 daily (covering the 2 last and this week's), 3 more weekly, then monthly adds Oct..Jun ends
    expect(keptPoints).toHaveLength(7 + 3 + 5);
    expect(decisions.find((d) => d.point.digest === 'sha256:latest-1-0')!.reasons.sort()).toEqual(
      ['current', 'daily', 'last', 'monthly', 'weekly'],
    );
  });

  it('keeps every point of tags matching a pattern, and pinned and recently pulled points', () => {
    const points = [...daily(30, 'release-1.0'), ...daily(30, 'nightly')];
    points.find((p) => p.digest === 'sha256:nightly-20-0')!.pinned = true;
    points.find((p) => p.digest === 'sha256:nightly-25-0')!.lastPulledAt = new Date(NOW.getTime() - DAY);
    const result = kept(points, { keepTags: ['release-*'], keepPulledWithin: 7 * DAY });
    expect(result.filter((d) => d.includes('release-1.0'))).toHaveLength(30);
    expect(result.filter((d) => d.includes('nightly')).sort()).toEqual(['sha256:nightly-1-0', 'sha256:nightly-20-0', 'sha256:nightly-25-0']);
  });

  it('treats each tag of each repository as its own series', () => {
    const points = [...daily(10, 'latest', 'a'), ...daily(10, 'latest', 'b'), ...daily(10, 'stable', 'a')];
    expect(kept(points, { keepLast: 2 })).toHaveLength(6);
  });
});

describe('retention invariants (property-based)', () => {
  const point = fc.record({
    repo: fc.constantFrom('a', 'b'),
    tag: fc.constantFrom('latest', 'v1', 'release-2'),
    digest: fc.uuid().map((u) => `sha256:${u}`),
    pushedAt: fc.integer({ min: 0, max: 800 * 24 }).map((h) => new Date(NOW.getTime() - h * 3_600_000)),
    pinned: fc.boolean(),
    current: fc.constant(false),
  });
  const points = fc.uniqueArray(point, { selector: (p) => p.digest, maxLength: 60 });
  const rules = fc.record(
    {
      keepLast: fc.integer({ min: 0, max: 10 }),
      keepWithin: fc.integer({ min: 0, max: 60 }).map((d) => d * DAY),
      keepHourly: fc.integer({ min: 0, max: 10 }),
      keepDaily: fc.integer({ min: 0, max: 10 }),
      keepWeekly: fc.integer({ min: 0, max: 10 }),
      keepMonthly: fc.integer({ min: 0, max: 10 }),
      keepYearly: fc.integer({ min: 0, max: 3 }),
      keepTags: fc.constantFrom([], ['release-*'], ['v?']),
    },
    { requiredKeys: [] },
  );

  it('never drops a pinned point', () => {
    fc.assert(fc.property(points, rules, (ps, r) => plan(ps, r, NOW).every((d) => !d.point.pinned || d.keep)));
  });

  it('keep last N keeps min(N, size) points of every series', () => {
    fc.assert(
      fc.property(points, fc.integer({ min: 1, max: 10 }), (ps, n) => {
        const decisions = plan(ps, { keepLast: n }, NOW);
        const bySeries = new Map<string, { total: number; last: number }>();
        for (const d of decisions) {
          const id = `${d.point.repo}:${d.point.tag}`;
          const s = bySeries.get(id) ?? { total: 0, last: 0 };
          s.total++;
          if (d.reasons.includes('last')) s.last++;
          bySeries.set(id, s);
        }
        return [...bySeries.values()].every((s) => s.last === Math.min(n, s.total));
      }),
    );
  });

  it('adding a rule never drops a point that was kept', () => {
    fc.assert(
      fc.property(points, rules, rules, (ps, a, b) => {
        const before = new Set(kept(ps, a));
        const after = new Set(kept(ps, { ...b, ...a, keepTags: [...(a.keepTags ?? []), ...(b.keepTags ?? [])] }));
        return [...before].every((d) => after.has(d));
      }),
    );
  });

  it('is idempotent: the kept points, planned again, are all kept', () => {
    fc.assert(
      fc.property(points, rules, (ps, r) => {
        const first = plan(ps, r, NOW).filter((d) => d.keep).map((d) => d.point);
        return plan(first, r, NOW).every((d) => d.keep);
      }),
    );
  });
});
