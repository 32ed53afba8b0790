// RPO monitoring: how old each repository's newest recovery point is, against the recovery point
// objective configured for it (rpo.maxAge, rpo.rules). A system that stops pushing is how a DR
// plan dies silently; this makes it show in the admin API, the metrics and `dr-registry status`.
//
// The pure part (objectiveFor, systemStatus, summarize) is computed at read time from each
// repository's newest push, so a system turns out of RPO the moment its age passes the objective,
// without a scan. RpoMonitor keeps those newest pushes: a scan of the store every
// rpo.refreshInterval (one listing of tag history per repository, no reads), plus every tag move
// this process makes as it happens.
import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import * as paths from '../registry/paths.js';
import type { Registry } from '../registry/registry.js';
import type { TagMove } from '../registry/tags.js';
import { STORE_PARALLELISM, forEachLimit } from './concurrency.js';
import { globToRegExp } from './policy.js';

export interface RpoRules {
  /** Objective of repositories no rule matches; 0: not watched. */
  maxAgeMs: number;
  /** First match wins; maxAgeMs 0: not watched. */
  rules: ReadonlyArray<{ repositories: string; maxAgeMs: number }>;
}

/** What the monitor knows of one repository. */
export interface SystemState {
  repository: string;
  /** Newest recovery point's push time (ms); undefined when it has none. */
  lastPushMs?: number;
  /** Recovery points in the tag history. */
  points: number;
}

/** One system as GET /admin/v1/systems reports it. */
export interface SystemStatus {
  repository: string;
  lastPushAt: string | null;
  lastPushAgeSeconds: number | null;
  rpoSeconds: number | null;
  /** null when not watched; false for a watched repository without any recovery point. */
  withinRpo: boolean | null;
  points: number;
}

export interface SystemsReport {
  systems: SystemStatus[];
  outOfRpo: number;
  /** When the store was last scanned (pushes to this process count at once). */
  refreshedAt: string | null;
}

export function rpoRulesFrom(config: Config['rpo']): RpoRules {
  return { maxAgeMs: config.maxAge, rules: config.rules.map((r) => ({ repositories: r.repositories, maxAgeMs: r.maxAge })) };
}

/** The objective of a repository in milliseconds, or undefined when it is not watched. */
export function objectiveFor(repository: string, rules: RpoRules): number | undefined {
  const rule = rules.rules.find((r) => globToRegExp(r.repositories).test(repository));
  const ms = rule ? rule.maxAgeMs : rules.maxAgeMs;
  return ms > 0 ? ms : undefined;
}

export function systemStatus(state: SystemState, rules: RpoRules, nowMs: number): SystemStatus {
  const objective = objectiveFor(state.repository, rules);
  const ageMs = state.lastPushMs === undefined ? undefined : Math.max(0, nowMs - state.lastPushMs);
  return {
    repository: state.repository,
    lastPushAt: state.lastPushMs === undefined ? null : new Date(state.lastPushMs).toISOString(),
    lastPushAgeSeconds: ageMs === undefined ? null : Math.floor(ageMs / 1000),
    rpoSeconds: objective === undefined ? null : objective / 1000,
    withinRpo: objective === undefined ? null : ageMs !== undefined && ageMs <= objective,
    points: state.points,
  };
}

export function summarize(states: Iterable<SystemState>, rules: RpoRules, nowMs: number): Omit<SystemsReport, 'refreshedAt'> {
  const systems = [...states].map((s) => systemStatus(s, rules, nowMs)).sort((a, b) => a.repository.localeCompare(b.repository));
  return { systems, outOfRpo: systems.filter((s) => s.withinRpo === false).length };
}

/**
 * Newest push and number of recovery points of every repository: two listings each, no reads.
 * The newest push is the newest recovery point, or a later re-push of the same digest (which adds
 * no point but rewrites the tag's current pointer: its modification time).
 */
export async function scanSystems(registry: Registry): Promise<SystemState[]> {
  const repositories = await registry.repositories.list();
  const states: SystemState[] = [];
  await forEachLimit(repositories, STORE_PARALLELISM, async (repository) => {
    const state: SystemState = { repository, points: 0 };
    const seen = (ms: number) => {
      if (state.lastPushMs === undefined || ms > state.lastPushMs) state.lastPushMs = ms;
    };
    for await (const obj of registry.store.list(paths.tagHistoryRoot(repository))) {
      const point = paths.parseTagHistoryKey(repository, obj.key);
      if (!point) continue;
      state.points++;
      seen(point.pushedAtMs);
    }
    if (state.points > 0) for await (const obj of registry.store.list(paths.currentTagsPrefix(repository))) seen(obj.modified.getTime());
    states.push(state);
  });
  return states;
}

export class RpoMonitor {
  readonly rules: RpoRules;
  private states = new Map<string, SystemState>();
  private refreshedAt: Date | undefined;
  private first: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Moves seen while a scan runs: applied over its result, which may predate them. */
  private movesDuringScan: TagMove[] | undefined;
  private readonly log: Logger;

  constructor(
    private readonly registry: Registry,
    private readonly config: Config['rpo'],
    logger: Logger,
  ) {
    this.rules = rpoRulesFrom(config);
    this.log = logger.child({ module: 'rpo' });
  }

  /** Follows local pushes and rescans the store every refreshInterval. */
  start(): void {
    if (this.timer) return;
    this.unsubscribe = this.registry.tags.onMove((move) => this.apply(move));
    this.first = this.refresh().catch(() => {});
    this.timer = setInterval(() => void this.refresh().catch(() => {}), this.config.refreshInterval);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
  }

  /** A prune in this process dropped `count` points of `repository` (no rescan needed). */
  pruned(repository: string, count: number): void {
    const state = this.states.get(repository);
    if (state && count > 0) state.points = Math.max(0, state.points - count);
  }

  /** Rescans the store now (one scan at a time: a call during a scan waits for it). */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      this.movesDuringScan = [];
      const started = new Date();
      try {
        const scanned = await scanSystems(this.registry);
        const states = new Map(scanned.map((s) => [s.repository, s]));
        const moves = this.movesDuringScan;
        this.states = states;
        for (const move of moves) this.apply(move, true);
        this.refreshedAt = started;
      } catch (err) {
        this.log.warn({ err }, 'rpo refresh failed');
        throw err;
      } finally {
        this.movesDuringScan = undefined;
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** The systems as of now; waits for the first scan after start(). */
  async report(nowMs = Date.now()): Promise<SystemsReport> {
    if (this.first) await this.first;
    if (!this.refreshedAt) await this.refresh(); // never scanned (or the first scan failed): its error answers
    return this.snapshot(nowMs);
  }

  /** The systems as of now from what is known, without waiting (metrics scrapes). */
  snapshot(nowMs = Date.now()): SystemsReport {
    return { ...summarize(this.states.values(), this.rules, nowMs), refreshedAt: this.refreshedAt?.toISOString() ?? null };
  }

  private apply(move: TagMove, replay = false): void {
    if (!replay) this.movesDuringScan?.push(move);
    const state = this.states.get(move.repo) ?? { repository: move.repo, points: 0 };
    const ms = move.pushedAt.getTime();
    // A replayed move may already be in the scan's result: count it only if it is newer.
    if (move.moved && (!replay || state.lastPushMs === undefined || ms > state.lastPushMs)) state.points++;
    if (state.lastPushMs === undefined || ms > state.lastPushMs) state.lastPushMs = ms;
    this.states.set(move.repo, state);
  }
}
