// A process-wide budget for large transfer buffers (S3 part buffers and read windows), so memory
// is bounded by configuration, not by the number of concurrent requests.
//
// Each transfer takes its first buffer with acquire() (waiting, first come first served, until the
// budget has room) and may take more with tryAcquire() (never waits): a transfer that holds one
// buffer can always make progress with it, so nobody waits on a transfer that waits in turn, and
// there is no deadlock. Without room, extra parallelism is what is given up, not progress.
//
// Buffers of the pooled sizes (S3 part buffers and read windows) are pooled: a released one is kept
// and handed to the next acquireBuffer() of its size, so the memory behind the budget is allocated
// once instead of being left to the garbage collector, which frees it late. Buffers granted plus
// buffers pooled never exceed the limit: a grant that needs the room drops pooled buffers first.
// docs/memory.md.

export class MemoryBudget {
  private used = 0;
  private peak = 0;
  private readonly waiting: Array<{ bytes: number; forBuffer: boolean; grant: (buffer: Buffer | undefined) => void; signal?: AbortSignal; onAbort?: () => void }> = [];
  /** Released buffers of a pooled size, not granted, ready for the next acquireBuffer() of that size. */
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  private allocated = 0;
  /** Buffers of exactly these sizes are pooled (none: no pool). */
  readonly poolSizes: readonly number[];

  constructor(
    /** Bytes of buffers that may exist at once. */
    readonly limit: number,
    poolSizes: number | readonly number[] = [],
  ) {
    this.poolSizes = (typeof poolSizes === 'number' ? [poolSizes] : poolSizes).filter((size) => size > 0);
    for (const size of this.poolSizes) this.free.set(size, []);
  }

  /** Bytes held in the pool, free for the next buffer. */
  get pooled(): number {
    return this.freeBytes;
  }

  /** Buffers the pool had to allocate so far (a pooled buffer handed out again is not counted). */
  get allocations(): number {
    return this.allocated;
  }

  /** acquire(), then a buffer of `bytes`: from the pool when it has one of that size. */
  async acquireBuffer(bytes: number, signal?: AbortSignal): Promise<Buffer> {
    return (await this.request(bytes, true, signal))!;
  }

  /** tryAcquire(), then a buffer of `bytes` (undefined when there was no room). */
  tryAcquireBuffer(bytes: number): Buffer | undefined {
    if (this.waiting.length > 0 || this.used + bytes > this.limit) return undefined;
    return this.take(bytes, true);
  }

  /**
   * Gives back a buffer from acquireBuffer() and its bytes. The caller must hold no reference to it
   * (nor to a view of it) any more, and nothing it was handed to may still read it: the next upload
   * fills it. A buffer of another size is not pooled.
   */
  releaseBuffer(buffer: Buffer): void {
    this.pool(buffer);
    this.release(buffer.length); // trims the pool if granted + pooled would exceed the limit
  }

  /**
   * Takes into the pool a buffer whose bytes were already given back with release(), now that
   * nothing reads or writes it any more (a read window the socket finished writing after its read
   * ended), if it is of a pooled size and the pool has room; else leaves it to the garbage collector.
   */
  adopt(buffer: Buffer): void {
    if (this.used + this.freeBytes + buffer.length > this.limit) return;
    this.pool(buffer);
  }

  private pool(buffer: Buffer): void {
    const bytes = buffer.length;
    const free = this.free.get(bytes);
    if (free && buffer.byteOffset === 0 && buffer.buffer.byteLength === bytes) {
      free.push(buffer);
      this.freeBytes += bytes;
    }
  }

  /** Bytes currently granted. */
  get inUse(): number {
    return this.used;
  }

  /** The most bytes ever granted at once (tests and metrics read it). */
  get highWater(): number {
    return this.peak;
  }

  /** Requests waiting for room. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Waits until `bytes` fit, in arrival order. A request larger than the whole budget is granted
   * when nothing else is held, so it cannot wait forever.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    return this.request(bytes, false, signal).then(() => undefined);
  }

  /** Grants `bytes` and, for a buffer, hands it over in the same step (the pool cannot change between). */
  private request(bytes: number, forBuffer: boolean, signal?: AbortSignal): Promise<Buffer | undefined> {
    signal?.throwIfAborted();
    if (this.waiting.length === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes, forBuffer));
    return new Promise<Buffer | undefined>((resolve, reject) => {
      const entry: (typeof this.waiting)[number] = { bytes, forBuffer, grant: resolve, signal };
      if (signal) {
        entry.onAbort = () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
          this.wake(); // the head may have been this entry, blocking smaller requests behind it
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.waiting.push(entry);
    });
  }

  /** Takes `bytes` if they fit now and nobody is waiting; never waits. */
  tryAcquire(bytes: number): boolean {
    if (this.waiting.length > 0 || this.used + bytes > this.limit) return false;
    this.take(bytes, false);
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) throw new Error(`memory budget released more than it granted (${this.used})`);
    this.trim();
    this.wake();
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limit || this.used === 0;
  }

  /** Grants `bytes`; for a buffer, hands one from the pool (or a new one) at once. */
  private take(bytes: number, forBuffer: boolean): Buffer | undefined {
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    if (forBuffer) return this.buffer(bytes);
    this.trim();
    return undefined;
  }

  /** Drops pooled buffers (to the garbage collector) while granted + pooled exceed the limit. */
  private trim(): void {
    for (const free of this.free.values()) {
      while (free.length > 0 && this.used + this.freeBytes > this.limit) this.freeBytes -= free.pop()!.length;
    }
  }

  private buffer(bytes: number): Buffer {
    const pooled = this.free.get(bytes)?.pop();
    if (pooled) {
      this.freeBytes -= bytes;
      return pooled;
    }
    this.trim();
    this.allocated++;
    return Buffer.allocUnsafeSlow(bytes);
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.grant(this.take(next.bytes, next.forBuffer));
    }
  }
}
