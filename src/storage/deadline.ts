// A decorator that gives every store call a deadline, bounds the calls in flight, and fails fast
// while the store is known to be down (a small circuit breaker), so a store that accepts
// connections and never answers (a stopped Swift proxy, a dead NFS server) costs clients a 503
// with Retry-After within seconds, not a 5-minute hang. docs/architecture.md, "Store deadlines".
//
// - Metadata calls (stat, delete, a small put, opening a read, each page of a listing) must
//   finish within `callMs`.
// - Streams get a progress deadline, not a total one: a read fails when the store sends nothing
//   for `idleMs` while the client waits for bytes; a write fails when the store takes nothing for
//   `idleMs` while the client's bytes wait for it (time spent waiting on the client is not the
//   store's, nor is time the driver spends waiting for the process's memory budget, which it
//   reports through onMemoryWait), and when it does not confirm within `callMs` after the last
//   byte (plus the time to drain what the driver may still buffer, up to 64 MiB, at 1 MiB/s). A
//   long healthy transfer is never cut.
// - The call's AbortSignal (the caller's, joined with the deadline) goes down to the driver, which
//   ends its requests (the S3 driver destroys them). A driver that does not is abandoned: the
//   caller gets its answer now, and the call counts as in flight until it ends, so a hung store
//   cannot accumulate calls without bound. Streaming writes, which last as long as their client
//   sends, hold at most half of maxInFlight.
// - After `breakerThreshold` consecutive calls past their deadline the breaker opens: calls fail at
//   once for `breakerCooldownMs`, then one trial call goes through; its success closes the
//   breaker, so service resumes by itself when the store answers again. Writes waiting for the
//   memory budget fail when it opens: the buffers they wait for are held by writes the hung store
//   does not answer, so they would wait for those to fail one by one.
import { Readable } from 'node:stream';
import type { ByteRange, KeyStatus, ListOptions, ObjectInfo, ObjectStore, OpOptions, PutOptions } from './driver.js';
import { canPresign, canReportKeys, isRecycling } from './driver.js';
import { StorageUnavailableError } from './errors.js';

export interface DeadlineOptions {
  /** Deadline of one metadata call (and of a write's confirmation after its last byte). */
  callMs: number;
  /** A stream fails when the store makes no progress this long while the other side waits. */
  idleMs: number;
  /** Store calls in flight at most (abandoned ones included); more fail at once. */
  maxInFlight: number;
  /** Consecutive calls past their deadline that open the breaker (3). */
  breakerThreshold?: number;
  /** How long an open breaker fails calls before letting a trial call through (5 s). */
  breakerCooldownMs?: number;
}

export class StoreDeadlineError extends StorageUnavailableError {
  constructor(what: string, ms: number) {
    super(`the store did not answer ${what} within ${ms / 1000} s`);
  }
}

/** A call given up because the breaker opened while it waited (not the store's answer to it). */
export class StoreDownError extends StorageUnavailableError {}

type Breaker = { state: 'closed'; failures: number } | { state: 'open'; until: number } | { state: 'trial'; until: number };

export class DeadlineStore implements ObjectStore {
  readonly description: string;
  readonly timeResolutionMs: number | undefined;
  readonly presignedGetUrl?: (key: string, expirySeconds: number) => Promise<string>;
  /** Present when the wrapped store is encrypted (key ids for the admin API; no deadline: a few small reads). */
  readonly keyStatus?: () => Promise<KeyStatus>;
  private inFlight = 0;
  /** Streaming writes in flight: they last as long as their client sends (counted in inFlight too). */
  private writesInFlight = 0;
  private breaker: Breaker = { state: 'closed', failures: 0 };
  /** Streaming writes now waiting for the driver's memory budget: failed when the breaker opens. */
  private readonly waitingForMemory = new Set<AbortController>();
  private readonly threshold: number;
  private readonly cooldownMs: number;

  constructor(
    readonly inner: ObjectStore,
    private readonly options: DeadlineOptions,
  ) {
    this.description = inner.description;
    this.timeResolutionMs = inner.timeResolutionMs;
    this.threshold = options.breakerThreshold ?? 3;
    this.cooldownMs = options.breakerCooldownMs ?? 5000;
    if (canPresign(inner)) this.presignedGetUrl = (key, expirySeconds) => inner.presignedGetUrl(key, expirySeconds);
    if (canReportKeys(inner)) this.keyStatus = () => inner.keyStatus();
  }

  /** Calls now in flight in the store below, abandoned ones included (for tests and metrics). */
  get callsInFlight(): number {
    return this.inFlight;
  }

  check(options: OpOptions = {}): Promise<void> {
    // A check is several calls (S3: bucket, probe write, probe delete): a deadline for each.
    return this.call('check', options, (signal) => this.inner.check({ signal }), undefined, 4 * this.options.callMs);
  }

  stat(key: string, options: OpOptions = {}): Promise<ObjectInfo | undefined> {
    return this.call(`stat ${key}`, options, (signal) => this.inner.stat(key, { signal }));
  }

  delete(key: string, options: OpOptions = {}): Promise<void> {
    return this.call(`delete ${key}`, options, (signal) => this.inner.delete(key, { signal }));
  }

  async get(key: string, range?: ByteRange, options: OpOptions = {}): Promise<Readable> {
    const controller = new AbortController();
    // The caller's signal stays linked for the stream's life (a client gone mid-pull stops the read).
    const link = linkSignals(options.signal, controller);
    let stream: Readable;
    try {
      stream = await this.call(`get ${key}`, options, (signal) => this.inner.get(key, range, { signal }), controller, true, link);
    } catch (err) {
      link.release();
      throw err;
    }
    const watched = Readable.from(this.watchReads(stream, key, controller, link.release), { objectMode: false });
    // Destroyed before its first read (a body koa never sends: HEAD, a client gone before the
    // response), the generator above never ran, so neither does its finally: close here too.
    watched.once('close', () => {
      link.release();
      stream.destroy();
    });
    // The chunks pass through unchanged: a consumer that hands them back reaches the driver's pool.
    if (isRecycling(stream)) Object.assign(watched, { recycle: (chunk: Buffer) => stream.recycle(chunk) });
    return watched;
  }

  async put(key: string, body: Readable | Uint8Array, options: PutOptions = {}): Promise<number> {
    if (body instanceof Uint8Array) {
      return this.call(`put ${key}`, options, (signal) => this.inner.put(key, body, { size: options.size, signal }));
    }
    // A stream: the deadline runs only while the store, not the client, holds things up, and not
    // while the driver waits for the process's memory budget (its turn for a part buffer): then
    // the store has nothing to take. After such a wait the store gets its whole interval again.
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let pending: { ms: number; what: string } | undefined;
    let waitingForMemory = false;
    const stall = (ms: number, what: string) => {
      clearTimeout(timer);
      pending = { ms, what };
      if (!waitingForMemory) timer = setTimeout(() => controller.abort(new StoreDeadlineError(`${what} of ${key}`, ms)), ms);
    };
    const calm = () => {
      clearTimeout(timer);
      pending = undefined;
    };
    const onMemoryWait = (waiting: boolean) => {
      waitingForMemory = waiting;
      clearTimeout(timer);
      if (waiting) this.waitingForMemory.add(controller);
      else this.waitingForMemory.delete(controller);
      // Only while the breaker is open: in its trial this put may be the trial call itself (given
      // up, it would report nothing and hold the trial), and if the trial fails, failed() below
      // gives up every put then waiting.
      if (waiting && this.breaker.state === 'open') controller.abort(new StoreDownError(`the store is not answering (put ${key} gave up waiting for memory)`));
      if (!waiting && pending) stall(pending.ms, pending.what);
      options.onMemoryWait?.(waiting);
    };
    const { idleMs, callMs } = this.options;
    const source = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const watched = Readable.from(
      (async function* () {
        let bytes = 0;
        try {
          for (;;) {
            calm(); // waiting on the client
            const next = await source.next();
            if (next.done) break;
            bytes += next.value.length;
            stall(idleMs, 'taking bytes'); // until the store asks for more
            yield next.value;
          }
          // After the last byte the driver may still be sending what it buffered (S3: a few
          // parts), progress this decorator cannot see: allow for it at a modest rate.
          stall(confirmMs(callMs, bytes), 'confirming the write');
        } finally {
          if (controller.signal.aborted) body.destroy();
        }
      })(),
      { objectMode: false },
    );
    // A streaming write lasts as long as its client sends, however slowly: such writes may hold
    // at most half the slots, so clients trickling bytes into uploads cannot take every slot and
    // turn every pull and restore away with 503 (the rest of maxInFlight stays for other calls).
    if (this.writesInFlight >= Math.max(1, Math.floor(this.options.maxInFlight / 2))) {
      throw new StorageUnavailableError(`${this.writesInFlight} streaming writes in flight (half of storage.deadlines.maxInFlight): put ${key} not attempted`);
    }
    this.writesInFlight++;
    try {
      return await this.call(`put ${key}`, options, (signal) => this.inner.put(key, watched, { size: options.size, signal, onMemoryWait }), controller, false);
    } finally {
      this.writesInFlight--;
      this.waitingForMemory.delete(controller);
      calm();
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    const controller = new AbortController();
    const link = linkSignals(options.signal, controller);
    const pages = this.inner.list(prefix, { startAfter: options.startAfter, signal: controller.signal })[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await this.call(`list ${prefix}`, options, () => pages.next(), controller, true, link);
        if (next.done) return;
        yield next.value;
      }
    } finally {
      link.release();
      controller.abort();
      void pages.return?.().catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }

  /**
   * Runs one store call under the deadline (when `timed`), the in-flight bound and the breaker.
   * Answers by the deadline whether or not the driver honours the signal.
   */
  private async call<T>(
    what: string,
    options: OpOptions,
    fn: (signal: AbortSignal) => Promise<T>,
    controller = new AbortController(),
    timed: boolean | number = true,
    /** The caller's link to `controller` when the caller keeps it beyond the call (get, list). */
    kept?: SignalLink,
  ): Promise<T> {
    options.signal?.throwIfAborted();
    this.admit(what);
    const link = kept ?? linkSignals(options.signal, controller);
    const signal = controller.signal;
    const ms = typeof timed === 'number' ? timed : this.options.callMs;
    const timer = timed !== false ? setTimeout(() => controller.abort(new StoreDeadlineError(what, ms)), ms) : undefined;
    this.inFlight++;
    const work = fn(signal).finally(() => this.inFlight--);
    let fail: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      fail = () => reject(signal.reason instanceof Error ? signal.reason : new StoreDeadlineError(what, ms));
      if (signal.aborted) fail();
      else signal.addEventListener('abort', fail, { once: true });
    });
    try {
      const result = await Promise.race([work, deadline]);
      this.succeeded();
      return result;
    } catch (err) {
      // Abandoned: its own failure comes later and is nobody's; a stream it opens late is closed.
      work.then(discard, () => undefined);
      const reason = signal.reason;
      // A deadline, not the client going away: the store is at fault.
      if (controller.signal.aborted && reason instanceof StoreDeadlineError) {
        this.failed();
        throw reason;
      }
      // Given up because the breaker opened: says nothing new about the store.
      if (controller.signal.aborted && reason instanceof StoreDownError) throw reason;
      // Any other answer (not found, refused connection, ...) came fast: the store is not hung.
      if (!options.signal?.aborted) this.succeeded();
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', fail!);
      if (!kept) link.release();
    }
  }

  /** Fails at once when the breaker is open or too many calls are in flight. */
  private admit(what: string): void {
    const b = this.breaker;
    if (b.state === 'open') {
      if (Date.now() < b.until) throw new StorageUnavailableError(`the store is not answering (${what} not attempted; next try in ${Math.ceil((b.until - Date.now()) / 1000)} s)`);
      this.breaker = { state: 'trial', until: Date.now() + this.options.callMs };
    } else if (b.state === 'trial' && Date.now() < b.until) {
      throw new StorageUnavailableError(`the store is not answering (${what} not attempted while a trial call runs)`);
    }
    if (this.inFlight >= this.options.maxInFlight) {
      throw new StorageUnavailableError(`${this.inFlight} store calls in flight (storage.deadlines.maxInFlight): ${what} not attempted`);
    }
  }

  private succeeded(): void {
    this.breaker = { state: 'closed', failures: 0 };
  }

  private failed(): void {
    const b = this.breaker;
    const failures = b.state === 'closed' ? b.failures + 1 : this.threshold;
    if (failures < this.threshold) {
      this.breaker = { state: 'closed', failures };
      return;
    }
    this.breaker = { state: 'open', until: Date.now() + this.cooldownMs };
    for (const waiting of [...this.waitingForMemory]) waiting.abort(new StoreDownError('the store is not answering (a put waiting for memory given up)'));
    this.waitingForMemory.clear();
  }

  /** A read's bytes, failing when the store sends nothing for idleMs while the reader waits. */
  private async *watchReads(stream: Readable, key: string, controller: AbortController, release: () => void): AsyncGenerator<Buffer> {
    const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const { idleMs } = this.options;
    try {
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const idle = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const err = new StoreDeadlineError(`bytes of ${key}`, idleMs);
            controller.abort(err);
            reject(err);
          }, idleMs);
        });
        let next: IteratorResult<Buffer>;
        try {
          next = await Promise.race([chunks.next(), idle]);
        } finally {
          clearTimeout(timer);
        }
        if (next.done) return;
        yield next.value;
      }
    } finally {
      release();
      stream.destroy();
    }
  }
}

/** Bytes a driver may still hold after the last one arrived (S3: (concurrency + 1) parts). */
const MAX_BUFFERED = 64 * 1024 * 1024;
/** The slowest store a write is expected to drain its buffer to: 1 MiB/s. */
const MIN_RATE_BYTES_PER_MS = (1024 * 1024) / 1000;

/** Deadline for confirming a write after its last byte: a call, plus draining what may be buffered. */
export function confirmMs(callMs: number, bytes: number): number {
  return callMs + Math.ceil(Math.min(bytes, MAX_BUFFERED) / MIN_RATE_BYTES_PER_MS);
}

/** Closes a stream nobody will read (an abandoned call's late result); its errors go nowhere. */
function discard(value: unknown): void {
  if (value instanceof Readable) {
    value.on('error', () => undefined);
    value.destroy();
  }
}

interface SignalLink {
  release(): void;
}

/**
 * Aborts `ours` when the caller's signal aborts, until release(). Not AbortSignal.any(): in Node 20
 * a composite signal with an abort listener is kept alive until it aborts (so it is not collected
 * while listened to), and a store call's signal almost never aborts, so every call kept its signal
 * and all its listeners reach, the request included: RSS grew by about 14 KB per manifest GET.
 * Here the one listener on the caller's signal is removed by release().
 */
function linkSignals(caller: AbortSignal | undefined, ours: AbortController): SignalLink {
  if (!caller) return { release: () => undefined };
  if (caller.aborted) {
    ours.abort(caller.reason);
    return { release: () => undefined };
  }
  const forward = () => ours.abort(caller.reason);
  caller.addEventListener('abort', forward, { once: true });
  return { release: () => caller.removeEventListener('abort', forward) };
}
