// The audit trail in the object store: what was done, by whom, from where, when.
//
// Each process writes its own chain (a random replica id per start) as append-only segments,
// audit/<replica>/<segment>-<last-ms>, one per flush; a segment is written once and never
// rewritten, so replicas never overwrite each other. Every record carries the hash of the record
// before it in its chain and its own hash over its content and that link, so editing a record,
// removing one, or removing a segment in the middle of a chain is detected by verify(), which
// names the record. Records are queued in memory and flushed every audit.flushInterval (or when a
// batch fills): a push never waits for the store on the trail's behalf. The queue is bounded;
// what overflows is counted and the count itself recorded. docs/audit.md has the format.
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import { readJson, writeJson } from '../registry/objects.js';
import * as paths from '../registry/paths.js';
import type { ObjectStore } from '../storage/driver.js';
import { currentActor, type AuditActor, type AuditEvent, type AuditOutcome, type AuditRecorder } from './recorder.js';

export interface AuditRecord {
  /** Position in its replica's chain, from 0. */
  seq: number;
  at: string;
  replica: string;
  action: string;
  outcome: AuditOutcome;
  actor: AuditActor;
  repository?: string;
  tag?: string;
  digest?: string;
  detail?: Record<string, unknown>;
  /** Hash of the previous record of the chain (of the replica id for the first). */
  prev: string;
  /** sha256 over `prev`, a newline and this record's JSON without `hash`. */
  hash: string;
}

interface Segment {
  version: 1;
  replica: string;
  segment: number;
  /** Time of the last record of the previous segment (0 for the first): tells expiry from removal. */
  prevLastAtMs: number;
  records: AuditRecord[];
}

type Pending = Omit<AuditRecord, 'seq' | 'replica' | 'prev' | 'hash'>;

export interface AuditLogOptions {
  flushIntervalMs: number;
  retentionMs: number;
  logger?: Logger;
  /** Records held in memory at most; more are counted as dropped (and that is recorded). */
  maxQueue?: number;
  /** Records per segment at most. */
  maxBatch?: number;
  /** A replica id of the caller's choosing (tests, the CLI's "cli-..." chains). */
  replica?: string;
}

export function chainStart(replica: string): string {
  return createHash('sha256').update(`dr-registry audit ${replica}`).digest('hex');
}

export function recordHash(record: Omit<AuditRecord, 'hash'> | AuditRecord): string {
  const { hash: _hash, ...content } = record as AuditRecord;
  return createHash('sha256').update(content.prev).update('\n').update(JSON.stringify(content)).digest('hex');
}

export class AuditLog implements AuditRecorder {
  readonly replica: string;
  private queue: Pending[] = [];
  private dropped = 0;
  private seq = 0;
  private segment = 0;
  private lastHash: string;
  private lastAtMs = 0;
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly maxQueue: number;
  private readonly maxBatch: number;

  constructor(
    private readonly store: ObjectStore,
    private readonly options: AuditLogOptions,
  ) {
    this.replica = options.replica ?? randomUUID();
    this.lastHash = chainStart(this.replica);
    this.maxQueue = options.maxQueue ?? 10_000;
    this.maxBatch = options.maxBatch ?? 1000;
  }

  /** Flushes on a timer and removes expired segments hourly. */
  start(): this {
    this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
    const expire = () => this.expire().catch((err: unknown) => this.options.logger?.warn({ err }, 'audit expiry failed'));
    this.expiryTimer = setInterval(expire, 3600_000);
    this.expiryTimer.unref();
    void expire();
    return this;
  }

  record(event: AuditEvent): void {
    if (this.queue.length >= this.maxQueue) {
      this.dropped++;
      return;
    }
    const pending: Pending = {
      at: new Date().toISOString(),
      action: event.action,
      outcome: event.outcome ?? 'ok',
      // A copy, read now: the request's actor is filled in as its credentials are checked.
      actor: { ...(event.actor ?? currentActor()) },
    };
    if (pending.actor.user === undefined) delete pending.actor.user;
    if (event.repository !== undefined) pending.repository = event.repository;
    if (event.tag !== undefined) pending.tag = event.tag;
    if (event.digest !== undefined) pending.digest = event.digest;
    if (event.detail !== undefined) pending.detail = event.detail;
    this.queue.push(pending);
    if (this.queue.length >= this.maxBatch) void this.flush();
  }

  /** Writes what is queued as one or more segments; flushes never overlap. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeQueued()).catch((err: unknown) => {
      this.options.logger?.warn({ err, queued: this.queue.length }, 'audit records not written yet; will retry');
    });
    return this.flushing;
  }

  /** Stops the timers and writes everything still queued (shutdown). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.expiryTimer);
    for (let i = 0; i < 3 && (this.queue.length > 0 || this.dropped > 0); i++) await this.flush();
  }

  private async writeQueued(): Promise<void> {
    while (this.queue.length > 0 || this.dropped > 0) {
      const batch = this.queue.slice(0, this.maxBatch);
      const dropped = this.dropped;
      if (dropped > 0) batch.unshift({ at: new Date().toISOString(), action: 'audit.dropped', outcome: 'failed', actor: { kind: 'system' }, detail: { count: dropped } });
      let prev = this.lastHash;
      const records = batch.map((p, i) => {
        const content: Omit<AuditRecord, 'hash'> = { seq: this.seq + i, ...p, replica: this.replica, prev };
        const ordered = orderRecord(content);
        const hash = recordHash(ordered);
        prev = hash;
        return { ...ordered, hash };
      });
      const lastAtMs = Date.parse(records.at(-1)!.at);
      const segment: Segment = { version: 1, replica: this.replica, segment: this.segment, prevLastAtMs: this.lastAtMs, records };
      await writeJson(this.store, paths.auditSegmentKey(this.replica, this.segment, lastAtMs), segment);
      // Written: only now does the chain move on (a failed write is retried with the same numbers).
      this.queue.splice(0, batch.length - (dropped > 0 ? 1 : 0));
      this.dropped -= dropped;
      this.seq += records.length;
      this.segment++;
      this.lastHash = prev;
      this.lastAtMs = lastAtMs;
    }
  }

  /** Removes segments whose last record is older than audit.retention (any replica's). */
  async expire(now = Date.now()): Promise<number> {
    const before = now - this.options.retentionMs;
    const old: string[] = [];
    for await (const obj of this.store.list(paths.AUDIT_PREFIX)) {
      const parsed = paths.parseAuditSegmentKey(obj.key);
      if (parsed && parsed.lastAtMs < before) old.push(obj.key);
    }
    for (const key of old) await this.store.delete(key);
    return old.length;
  }
}

/** Writes one record as its own chain (a CLI command that changes something: key rotation). */
export async function auditOnce(store: ObjectStore, event: AuditEvent, retentionMs: number): Promise<void> {
  const log = new AuditLog(store, { flushIntervalMs: 60_000, retentionMs, replica: `cli-${randomUUID()}` });
  log.record(event);
  await log.close();
}

/** One key order for every record, so the hash is over the same text whoever serialises it. */
function orderRecord(r: Omit<AuditRecord, 'hash'>): Omit<AuditRecord, 'hash'> {
  const out: Record<string, unknown> = { seq: r.seq, at: r.at, replica: r.replica, action: r.action, outcome: r.outcome, actor: r.actor };
  for (const k of ['repository', 'tag', 'digest', 'detail'] as const) if (r[k] !== undefined) out[k] = r[k];
  out.prev = r.prev;
  return out as Omit<AuditRecord, 'hash'>;
}

export interface AuditFilter {
  since?: Date;
  until?: Date;
  action?: string;
  /** A user name, or an actor kind ("admin-token", "scheduler", ...). */
  actor?: string;
  repository?: string;
  outcome?: AuditOutcome;
  /** Newest first, at most this many (default 1000). */
  limit?: number;
}

/** Records matching the filter, newest first. Reads the segments that can hold them. */
export async function listAudit(store: ObjectStore, filter: AuditFilter = {}): Promise<AuditRecord[]> {
  const sinceMs = filter.since?.getTime() ?? 0;
  const keys: string[] = [];
  for await (const obj of store.list(paths.AUDIT_PREFIX)) {
    const parsed = paths.parseAuditSegmentKey(obj.key);
    if (parsed && parsed.lastAtMs >= sinceMs) keys.push(obj.key);
  }
  const out: AuditRecord[] = [];
  for (const key of keys) {
    const segment = await readSegment(store, key);
    for (const r of segment?.records ?? []) {
      const at = Date.parse(r.at);
      if (filter.since && at < sinceMs) continue;
      if (filter.until && at > filter.until.getTime()) continue;
      if (filter.action && r.action !== filter.action) continue;
      if (filter.outcome && r.outcome !== filter.outcome) continue;
      if (filter.repository && r.repository !== filter.repository) continue;
      if (filter.actor && r.actor?.user !== filter.actor && r.actor?.kind !== filter.actor) continue;
      out.push(r);
    }
  }
  out.sort((a, b) => b.at.localeCompare(a.at) || b.seq - a.seq);
  return out.slice(0, filter.limit ?? 1000);
}

export interface AuditProblem {
  replica: string;
  /** The segment's storage key. */
  key: string;
  /** The record concerned, when one is. */
  seq?: number;
  action?: string;
  at?: string;
  problem: string;
}

export interface AuditVerification {
  ok: boolean;
  chains: number;
  segments: number;
  records: number;
  problems: AuditProblem[];
}

/**
 * Checks every chain: segments numbered without gaps (a gap at the start only when what is
 * missing had expired), each record's hash over its content, and each record linked to the one
 * before it. Names every record or segment that fails.
 */
export async function verifyAudit(store: ObjectStore, options: { retentionMs: number; now?: number }): Promise<AuditVerification> {
  const now = options.now ?? Date.now();
  const chains = new Map<string, Array<{ key: string; segment: number }>>();
  for await (const obj of store.list(paths.AUDIT_PREFIX)) {
    const parsed = paths.parseAuditSegmentKey(obj.key);
    if (!parsed) continue;
    chains.set(parsed.replica, [...(chains.get(parsed.replica) ?? []), { key: obj.key, segment: parsed.segment }]);
  }
  const result: AuditVerification = { ok: true, chains: chains.size, segments: 0, records: 0, problems: [] };
  const problem = (p: AuditProblem) => result.problems.push(p);
  for (const [replica, list] of chains) {
    list.sort((a, b) => a.segment - b.segment);
    let expectedSegment: number | undefined;
    let prevHash: string | undefined;
    let expectedSeq: number | undefined;
    for (const { key, segment: number } of list) {
      result.segments++;
      let segment: Segment | undefined;
      try {
        segment = await readSegment(store, key);
      } catch {
        segment = undefined;
      }
      if (!segment || !Array.isArray(segment.records)) {
        problem({ replica, key, problem: 'segment unreadable (not the JSON the registry wrote)' });
        expectedSegment = number + 1;
        prevHash = undefined;
        expectedSeq = undefined;
        continue;
      }
      if (segment.replica !== replica || segment.segment !== number) problem({ replica, key, problem: 'segment moved: its content names another place' });
      if (expectedSegment === undefined) {
        if (number === 0) prevHash = chainStart(replica);
        else if (segment.prevLastAtMs >= now - options.retentionMs) {
          problem({ replica, key, problem: `segment(s) before ${number} missing, and not yet expired by audit.retention` });
        }
      } else if (number !== expectedSegment) {
        problem({ replica, key, problem: `segment(s) ${expectedSegment}..${number - 1} missing` });
        prevHash = undefined;
        expectedSeq = undefined;
      }
      for (const r of segment.records) {
        result.records++;
        const named = { replica, key, seq: r.seq, action: r.action, at: r.at };
        if (expectedSeq !== undefined && r.seq !== expectedSeq) problem({ ...named, problem: `record(s) ${expectedSeq}..${r.seq - 1} missing` });
        if (recordHash(r) !== r.hash) problem({ ...named, problem: 'record edited: its hash does not match its content' });
        else if (prevHash !== undefined && r.prev !== prevHash) problem({ ...named, problem: 'the record before this one was edited or removed: its link does not match' });
        prevHash = r.hash;
        expectedSeq = r.seq + 1;
      }
      expectedSegment = number + 1;
    }
  }
  result.ok = result.problems.length === 0;
  return result;
}

async function readSegment(store: ObjectStore, key: string): Promise<Segment | undefined> {
  return readJson<Segment>(store, key);
}
