// Runs prune and garbage collection for one registry process: on demand (admin API, CLI) and on
// a schedule (retention.interval), and keeps the status the admin API reports. Several replicas
// may each schedule runs; the collector's lease lets one of them work at a time.
import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { readJson } from '../registry/objects.js';
import { GC_REPORT_KEY } from '../registry/paths.js';
import type { Registry } from '../registry/registry.js';
import { Collector, type GcOptions, type GcPhase, type GcReport } from './gc.js';
import { LeaseBusyError } from './lease.js';
import { RetentionPolicies } from './policies.js';
import { prune, type PruneResult } from './prune.js';
import { RpoMonitor } from './rpo.js';

export interface GcStatus {
  running: boolean;
  dryRun?: boolean;
  phase?: GcPhase;
  done?: number;
  total?: number;
  startedAt?: string;
  /** The last run that finished, here or on another replica (dry runs only from here). */
  lastReport?: GcReport;
  /** Why the last run here failed, if it did. */
  lastError?: string;
}

export class GcAlreadyRunningError extends Error {
  override readonly name = 'GcAlreadyRunningError';
}

export class Maintenance {
  readonly policies: RetentionPolicies;
  /** Newest push of every repository against its objective (started by schedule()). */
  readonly rpo: RpoMonitor;
  private status: GcStatus = { running: false };
  private timer: NodeJS.Timeout | undefined;
  /** The scheduled prune + collection in progress, if any. */
  private scheduled: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(
    private readonly registry: Registry,
    private readonly config: Config,
    logger: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.policies = new RetentionPolicies(registry.store, config.retention.policies);
    this.log = logger.child({ module: 'maintenance' });
    this.rpo = new RpoMonitor(registry, config.rpo, logger);
    if (metrics) metrics.systems = () => this.rpo.snapshot();
  }

  async prune(options: { dryRun: boolean; onPruned?: (repo: string, done: number, total: number) => void }): Promise<PruneResult> {
    const { policies } = await this.policies.current();
    const result = await prune(this.registry, policies, { ...options, deleteUntagged: this.config.gc.deleteUntagged });
    if (!options.dryRun) {
      this.log.info({ dropped: result.droppedPoints, kept: result.keptPoints }, 'recovery points pruned');
      this.metrics?.prunedPoints.inc(result.droppedPoints);
    }
    return result;
  }

  /**
   * Starts a collection in the background and answers once it holds the lease (so a collection
   * on another replica is refused here, not found later); its progress shows in gcStatus().
   */
  async startGc(options: { dryRun: boolean }): Promise<GcStatus> {
    if (this.status.running) throw new GcAlreadyRunningError('a garbage collection is already running in this process');
    let started!: () => void;
    const leased = new Promise<void>((resolve) => (started = resolve));
    const run = this.runGc({ ...options, onProgress: (p) => p.phase !== 'lease' && started() });
    await Promise.race([leased, run]);
    run.catch(() => {}); // the outcome is kept in the status
    return { ...this.status };
  }

  /** Runs a collection to its end (CLI and scheduler); the status follows it too. */
  async runGc(options: { dryRun: boolean; onProgress?: GcOptions['onProgress'] }): Promise<GcReport> {
    if (this.status.running) throw new GcAlreadyRunningError('a garbage collection is already running in this process');
    const { lastReport } = this.status;
    this.status = { running: true, dryRun: options.dryRun, startedAt: new Date().toISOString(), lastReport };
    try {
      const report = await new Collector(this.registry, {
        ...this.gcOptions(),
        dryRun: options.dryRun,
        onProgress: (p) => {
          Object.assign(this.status, p);
          options.onProgress?.(p);
        },
      }).run();
      this.status = { running: false, lastReport: report };
      this.metrics?.gcRuns.inc({ outcome: report.dryRun ? 'dry-run' : 'ok' });
      if (!report.dryRun) {
        this.metrics?.gcSweptBlobs.inc(report.blobsSwept);
        this.metrics?.gcFreedBytes.inc(report.bytesFreed + report.uploadBytesFreed);
      }
      return report;
    } catch (err) {
      this.status = { running: false, lastReport, lastError: (err as Error).message };
      this.metrics?.gcRuns.inc({ outcome: err instanceof LeaseBusyError ? 'busy' : 'error' });
      if (!(err instanceof LeaseBusyError)) this.log.error({ err }, 'garbage collection failed');
      throw err;
    }
  }

  /** This process's run, and the newest finished report: this process's or any replica's. */
  async gcStatus(): Promise<GcStatus> {
    const stored = await readJson<GcReport>(this.registry.store, GC_REPORT_KEY);
    const local = this.status.lastReport;
    const newest = !stored ? local : !local || stored.finishedAt > local.finishedAt ? stored : local;
    return { ...this.status, ...(newest ? { lastReport: newest } : {}) };
  }

  gcOptions(): GcOptions {
    const { gc, retention } = this.config;
    return {
      graceMs: gc.grace,
      sweepDelayMs: gc.sweepDelay,
      retentionGraceMs: retention.grace,
      deleteUntagged: gc.deleteUntagged,
      logger: this.log.child({ module: 'gc' }),
    };
  }

  /** Starts RPO monitoring; prune, then collect, every retention.interval (none when 0). */
  schedule(): void {
    this.rpo.start();
    const every = this.config.retention.interval;
    if (every <= 0) return;
    this.timer = setInterval(() => {
      this.scheduled ??= this.scheduledRun().finally(() => (this.scheduled = undefined));
    }, every);
    this.timer.unref();
  }

  /** Stops the schedule; resolves when a scheduled run in progress has ended (or after `waitMs`). */
  async stop(waitMs = Infinity): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.rpo.stop();
    const running = this.scheduled;
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = Number.isFinite(waitMs) ? new Promise<void>((r) => (timer = setTimeout(r, waitMs))) : new Promise<void>(() => undefined);
    await Promise.race([running, timeout]).finally(() => clearTimeout(timer));
  }

  private async scheduledRun(): Promise<void> {
    if (this.status.running) return;
    try {
      await this.prune({ dryRun: false });
      await this.runGc({ dryRun: false });
    } catch (err) {
      if (err instanceof LeaseBusyError) this.log.info('another replica is collecting; skipped');
      else this.log.warn({ err }, 'scheduled prune and collection failed');
    }
  }
}
