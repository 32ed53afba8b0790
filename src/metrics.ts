// Prometheus metrics of one registry process (prom-client), in a registry of their own so that
// several apps in one process (tests) never collide. Labels stay low-cardinality: route kinds,
// methods, statuses and store operations, never digests. Only the RPO gauges carry repository
// names: the operator chose them and their number is bounded.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the RPO gauges read at scrape time (src/retention/rpo.ts); no store access. */
export interface SystemsSnapshot {
  systems: ReadonlyArray<{ repository: string; lastPushAgeSeconds: number | null; rpoSeconds: number | null; withinRpo: boolean | null }>;
  outOfRpo: number;
}

export type RouteKind = 'base' | 'catalog' | 'blob' | 'upload' | 'manifest' | 'tags' | 'referrers' | 'token' | 'admin' | 'health' | 'other';

/** Seconds, from a millisecond round trip on loopback to a multi-GB transfer. */
const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

export class Metrics {
  readonly register = new Registry();
  private readonly registers = [this.register];

  readonly httpRequests = new Counter({
    name: 'drreg_http_requests_total',
    help: 'HTTP requests, by method, route kind and status ("aborted": the client left before the response ended).',
    labelNames: ['method', 'route', 'status'] as const,
    registers: this.registers,
  });
  readonly httpDuration = new Histogram({
    name: 'drreg_http_request_duration_seconds',
    help: 'Time from a request to the end of its response, by method and route kind.',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: this.registers,
  });
  readonly httpReceivedBytes = new Counter({
    name: 'drreg_http_received_bytes_total',
    help: 'Bytes received from clients (headers included), by route kind: pushes arrive on "upload".',
    labelNames: ['route'] as const,
    registers: this.registers,
  });
  readonly httpSentBytes = new Counter({
    name: 'drreg_http_sent_bytes_total',
    help: 'Bytes sent to clients (headers included), by route kind: pulls leave on "blob".',
    labelNames: ['route'] as const,
    registers: this.registers,
  });
  readonly storeOperations = new Counter({
    name: 'drreg_storage_operations_total',
    help: 'Object store calls, by operation and outcome (ok or error).',
    labelNames: ['operation', 'outcome'] as const,
    registers: this.registers,
  });
  readonly storeDuration = new Histogram({
    name: 'drreg_storage_operation_duration_seconds',
    help: 'Object store call time (for get: until the stream opens), by operation.',
    labelNames: ['operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: this.registers,
  });
  readonly gcRuns = new Counter({
    name: 'drreg_gc_runs_total',
    help: 'Garbage collections this process ran, by outcome (ok, dry-run, error, busy: another replica held the lease).',
    labelNames: ['outcome'] as const,
    registers: this.registers,
  });
  readonly gcSweptBlobs = new Counter({ name: 'drreg_gc_swept_blobs_total', help: 'Blobs the collections of this process deleted.', registers: this.registers });
  readonly gcFreedBytes = new Counter({
    name: 'drreg_gc_freed_bytes_total',
    help: 'Bytes the collections of this process freed (blobs and stale upload data).',
    registers: this.registers,
  });
  readonly prunedPoints = new Counter({ name: 'drreg_prune_dropped_points_total', help: 'Recovery points this process pruned.', registers: this.registers });
  readonly passwordChecks = new Counter({
    name: 'drreg_password_checks_total',
    help: 'Password (scrypt) verifications: one per login attempt that was not turned away, whatever the name.',
    registers: this.registers,
  });
  readonly loginFailures = new Counter({
    name: 'drreg_auth_login_failures_total',
    help: 'Token requests refused for wrong credentials.',
    registers: this.registers,
  });

  /** Set by the RPO monitor; the gauges below are empty until then. */
  systems: (() => SystemsSnapshot) | undefined;
  readonly rpoLastPushAge = new Gauge({
    name: 'drreg_rpo_last_push_age_seconds',
    help: 'Age of the newest recovery point of each repository (system); none for a repository never pushed.',
    labelNames: ['repository'] as const,
    registers: this.registers,
    collect: () => {
      this.rpoLastPushAge.reset();
      for (const s of this.systems?.().systems ?? []) {
        if (s.lastPushAgeSeconds !== null) this.rpoLastPushAge.set({ repository: s.repository }, s.lastPushAgeSeconds);
      }
    },
  });
  readonly rpoObjective = new Gauge({
    name: 'drreg_rpo_objective_seconds',
    help: 'The recovery point objective of each watched repository (rpo.maxAge, rpo.rules).',
    labelNames: ['repository'] as const,
    registers: this.registers,
    collect: () => {
      this.rpoObjective.reset();
      for (const s of this.systems?.().systems ?? []) {
        if (s.rpoSeconds !== null) this.rpoObjective.set({ repository: s.repository }, s.rpoSeconds);
      }
    },
  });
  readonly rpoOutOfRpo = new Gauge({
    name: 'drreg_rpo_systems_out_of_rpo',
    help: 'Watched repositories whose newest recovery point is older than their objective, or that have none.',
    registers: this.registers,
    collect: () => {
      this.rpoOutOfRpo.set(this.systems?.().outOfRpo ?? 0);
    },
  });

  /** Adds the process metrics (memory, CPU, event loop lag, GC pauses) for a scraped process. */
  withProcessMetrics(): this {
    collectDefaultMetrics({ register: this.register, prefix: 'drreg_' });
    return this;
  }
}

/** The kind of route a path is, for labels. */
export function routeKind(path: string): RouteKind {
  if (path === '/v2' || path === '/v2/') return 'base';
  if (path.startsWith('/v2/')) {
    if (path === '/v2/_catalog') return 'catalog';
    if (path.includes('/blobs/uploads')) return 'upload';
    if (path.includes('/blobs/')) return 'blob';
    if (path.includes('/manifests/')) return 'manifest';
    if (path.endsWith('/tags/list')) return 'tags';
    if (path.includes('/referrers/')) return 'referrers';
    return 'other';
  }
  if (path === '/auth/token') return 'token';
  if (path.startsWith('/admin/')) return 'admin';
  if (path === '/healthz') return 'health';
  return 'other';
}
