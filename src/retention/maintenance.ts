// Runs prune, garbage collection and verify (scrub) for one registry process: on demand (admin
// API, CLI) and on a schedule (retention.interval, verify.interval), keeps the status the admin API
// reports, and runs the RPO monitor. Several replicas may each schedule runs; the collector's
// lease lets one of them collect at a time (verify only reads).
import { actingAs } from '../audit/recorder.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { readJson, writeJson } from '../registry/objects.js';
import { GC_REPORT_KEY, VERIFY_REPORT_KEY } from '../registry/paths.js';
import type { Registry } from '../registry/registry.js';
import { Collector, type GcOptions, type GcPhase, type GcReport } from './gc.js';
import { LeaseBusyError } from './lease.js';
import { RetentionPolicies } from './policies.js';
import { prune, type PruneResult } from './prune.js';
import { RpoMonitor } from './rpo.js';
import { checkScope, verify, type VerifyReport, type VerifyScope } from './verify.js';

export interface VerifyStatus {
  running: boolean;
  scope?: VerifyScope;
  startedAt?: string;
  done?: number;
  total?: number;
  /** The newest finished run, here or on another replica. */
  lastReport?: VerifyReport;
  lastError?: string;
}

export class VerifyAlreadyRunningError extends Error {
  override readonly name = 'VerifyAlreadyRunningError';
}

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
  private verifying: VerifyStatus = { running: false };
  private verifyTimer: NodeJS.Timeout | undefined;
  /** A verify run in the background (admin API or schedule), which stop() waits for. */
  private verifyRun: Promise<unknown> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The scheduled prune + collection in progress, if any. */
  private scheduled: Promise<void> | undefined;
  private readonly log: Logger;
  /** The process's audit trail, when one is open (flushed before the admin API lists it). */
  audit?: { flush(): Promise<void> };

  constructor(
    private readonly registry: Registry,
    readonly config: Config,
    logger: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.policies = new RetentionPolicies(registry.store, config.retention.policies, registry.audit);
    this.log = logger.child({ module: 'maintenance' });
    this.rpo = new RpoMonitor(registry, config.rpo, logger);
    if (metrics) metrics.systems = () => this.rpo.snapshot();
  }

  async prune(options: { dryRun: boolean; onPruned?: (repo: string, done: number, total: number) => void }): Promise<PruneResult> {
    const { policies } = await this.policies.current();
    const result = await prune(this.registry, policies, { ...options, deleteUntagged: this.config.gc.deleteUntagged });
    this.registry.audit.record({ action: 'prune', detail: { dryRun: options.dryRun, dropped: result.droppedPoints, kept: result.keptPoints, freedBytes: result.freedBytes } });
    if (!options.dryRun) {
      this.log.info({ dropped: result.droppedPoints, kept: result.keptPoints }, 'recovery points pruned');
      this.metrics?.prunedPoints.inc(result.droppedPoints);
      // Point counts in /systems must not go on counting what was just pruned.
      for (const repo of result.repositories) this.rpo.pruned(repo.name, repo.decisions.filter((d) => !d.keep).length);
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
      this.registry.audit.record({
        action: 'gc',
        detail: { dryRun: report.dryRun, manifestsRemoved: report.manifestsRemoved, blobsSwept: report.blobsSwept, bytesFreed: report.bytesFreed + report.uploadBytesFreed },
      });
      this.metrics?.gcRuns.inc({ outcome: report.dryRun ? 'dry-run' : 'ok' });
      if (!report.dryRun) {
        this.metrics?.gcSweptBlobs.inc(report.blobsSwept);
        this.metrics?.gcFreedBytes.inc(report.bytesFreed + report.uploadBytesFreed);
      }
      return report;
    } catch (err) {
      this.status = { running: false, lastReport, lastError: (err as Error).message };
      this.registry.audit.record({ action: 'gc', outcome: 'failed', detail: { dryRun: options.dryRun, error: (err as Error).message } });
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
  /** Checks the scope, then scrubs in the background; the status follows it (verifyStatus). */
  async startVerify(scope: VerifyScope): Promise<VerifyStatus> {
    if (this.verifying.running) throw new VerifyAlreadyRunningError('a verify run is already running in this process');
    await checkScope(this.registry, scope);
    this.background(this.runVerify(scope)); // the outcome is kept in the status
    return { ...this.verifying };
  }

  /** Scrubs to the end (CLI and schedule); the report is kept in the store for every replica. */
  async runVerify(scope: VerifyScope, onProgress?: (done: number, total: number) => void): Promise<VerifyReport> {
    if (this.verifying.running) throw new VerifyAlreadyRunningError('a verify run is already running in this process');
    const { lastReport } = this.verifying;
    this.verifying = { running: true, scope, startedAt: new Date().toISOString(), done: 0, total: 0, ...(lastReport ? { lastReport } : {}) };
    try {
      const report = await verify(this.registry, scope, {
        logger: this.log,
        onProgress: (p) => {
          this.verifying.done = p.done;
          this.verifying.total = p.total;
          onProgress?.(p.done, p.total);
        },
      });
      await writeJson(this.registry.store, VERIFY_REPORT_KEY, report);
      this.verifying = { running: false, lastReport: report };
      return report;
    } catch (err) {
      this.verifying = { running: false, ...(lastReport ? { lastReport } : {}), lastError: (err as Error).message };
      throw err;
    }
  }

  async verifyStatus(): Promise<VerifyStatus> {
    const stored = await readJson<VerifyReport>(this.registry.store, VERIFY_REPORT_KEY);
    const local = this.verifying.lastReport;
    const newest = !stored ? local : !local || stored.finishedAt > local.finishedAt ? stored : local;
    return { ...this.verifying, ...(newest ? { lastReport: newest } : {}) };
  }

  schedule(): void {
    this.rpo.start();
    if (this.config.verify.interval > 0) {
      this.verifyTimer = setInterval(() => {
        if (this.verifying.running) return;
        this.background(this.runVerify({}).catch((err: unknown) => this.log.warn({ err }, 'scheduled verify failed')));
      }, this.config.verify.interval);
      this.verifyTimer.unref();
    }
    const every = this.config.retention.interval;
    if (every <= 0) return;
    this.timer = setInterval(() => {
      this.scheduled ??= actingAs({ kind: 'scheduler' }, () => this.scheduledRun()).finally(() => (this.scheduled = undefined));
    }, every);
    this.timer.unref();
  }

  /** Stops the schedule; resolves when a scheduled run in progress has ended (or after `waitMs`). */
  async stop(waitMs = Infinity): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    clearInterval(this.verifyTimer);
    this.rpo.stop();
    const running = this.scheduled || this.verifyRun ? Promise.all([this.scheduled, this.verifyRun]) : undefined;
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = Number.isFinite(waitMs) ? new Promise<void>((r) => (timer = setTimeout(r, waitMs))) : new Promise<void>(() => undefined);
    await Promise.race([running, timeout]).finally(() => clearTimeout(timer));
  }

  private background(run: Promise<unknown>): void {
    const tracked: Promise<unknown> = run.catch(() => {}).finally(() => {
      if (this.verifyRun === tracked) this.verifyRun = undefined;
    });
    this.verifyRun = tracked;
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
