// A process-wide budget for large transfer buffers (S3 part buffers and read windows), so memory
// is bounded by configuration, not by the number of concurrent requests.
//
// Each transfer takes its first buffer with acquire() (waiting, first come first served, until the
// budget has room) and may take more with tryAcquire() (never waits): a transfer that holds one
// buffer can always make progress with it, so nobody waits on a transfer that waits in turn, and
// there is no deadlock. Without room, extra parallelism is what is given up, not progress.
// docs/memory.md.

export class MemoryBudget {
  private used = 0;
  private peak = 0;
  private readonly waiting: Array<{ bytes: number; grant: () => void; signal?: AbortSignal; onAbort?: () => void }> = [];

  constructor(
    /** Bytes of buffers that may exist at once. */
    readonly limit: number,
  ) {}

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
    signal?.throwIfAborted();
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.take(bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry: (typeof this.waiting)[number] = { bytes, grant: resolve, signal };
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
    this.take(bytes);
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) throw new Error(`memory budget released more than it granted (${this.used})`);
    this.wake();
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limit || this.used === 0;
  }

  private take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      this.take(next.bytes);
      next.grant();
    }
  }
}
