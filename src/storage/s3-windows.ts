// A large S3 range as consecutive windows fetched a few at a time and streamed in order: one GET
// stream from Swift or S3 is slower than the client's link, several in parallel are not.
//
// - Memory: every window is a buffer of the memory budget (pooled: the same few buffers serve
//   every pull). The first is guaranteed (waits for room), more are fetched ahead only while the
//   budget has room; a stream holds at most READ_AHEAD windows being fetched and MAX_HELD in all.
// - Back-pressure: a window is handed over only when the consumer asks for more.
// - A window that fails or stalls is fetched again by itself (the fetch function retries it), not
//   the whole range.
// - Recycling: a consumer that hands each chunk back once the socket wrote it (the blob GET)
//   gets its windows refilled in place; the window's budget is held until then, so the bytes in
//   the socket's queue are counted. A consumer that does not (decryption, readAll, the collector)
//   is one that has not recycled yet: once it has taken a window, that window's budget goes to the
//   next window when the stream needs the room (the oldest first), and the buffer is never filled
//   again (the consumer may still hold it). A window recycled after its budget went back (the
//   stream ended, or needed the room before the consumer's first recycle) joins the pool if it has room.
import { Readable, addAbortSignal } from 'node:stream';
import type { MemoryBudget } from './budget.js';
import type { RecyclingStream } from './driver.js';

/** Fills `into` with the object's bytes from `from` on; settles only once nothing writes `into` any more. */
export type WindowFetch = (from: number, into: Buffer, signal: AbortSignal) => Promise<void>;

export interface WindowOptions {
  budget: MemoryBudget;
  /** Bytes per window (a pooled size of the budget). */
  windowSize: number;
  /** Windows being fetched at once, at most (fetched ones waiting their turn do not count). */
  readAhead: number;
  /** Windows a stream holds at most: being fetched, ready, and handed over but not yet recycled. */
  maxHeld: number;
  fetch: WindowFetch;
}

interface Window {
  /** The whole buffer (windowSize bytes), as the budget handed it out. */
  buffer: Buffer;
  /** The bytes of this window: buffer.subarray(0, n). */
  view: Buffer;
  done: Promise<void>;
}

export class WindowStream extends Readable implements RecyclingStream {
  private next: number;
  /** Being fetched or fetched, in order; each a granted buffer. */
  private readonly queue: Window[] = [];
  /** Windows of the queue whose fetch has not settled yet. */
  private fetching = 0;
  /** Handed to the consumer, still granted, until recycled: by ArrayBuffer. */
  private readonly out = new Map<ArrayBuffer, Buffer>();
  /** Recycled, still granted, free to fill. */
  private readonly spare: Buffer[] = [];
  /** Ours, budget given back while the consumer may still hold them: never filled again, only adopted. */
  private readonly released = new WeakSet<ArrayBuffer>();
  /** The consumer has handed a window back: it recycles, so its windows are kept until it does. */
  private recycling = false;
  private waiter: { resolve: (buffer: Buffer) => void; reject: (err: Error) => void } | undefined;
  private pumping = false;
  private readonly controller = new AbortController();

  private constructor(
    private readonly options: WindowOptions,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: 1 });
    this.next = start;
  }

  /**
   * Opens the range [start, end] (inclusive) and waits for its first window, so that a missing
   * object or an unavailable store fails here, not midway through a response.
   */
  static async open(options: WindowOptions, start: number, end: number, signal?: AbortSignal): Promise<WindowStream> {
    const stream = new WindowStream(options, start, end);
    // The caller's signal (the client gone, a store deadline) destroys the stream: its fetches with it.
    if (signal) addAbortSignal(signal, stream);
    try {
      const first = await options.budget.acquireBuffer(options.windowSize, signal);
      if (stream.destroyed) {
        options.budget.releaseBuffer(first);
        throw new Error('read ended');
      }
      stream.launch(first);
      stream.fill();
      await stream.queue[0]!.done;
      return stream;
    } catch (err) {
      stream.destroy();
      throw signal?.aborted && signal.reason instanceof Error ? signal.reason : err;
    }
  }

  /** The consumer is done with `chunk` (the socket wrote it): its window may be filled again. */
  recycle(chunk: Buffer): void {
    const ab = chunk.buffer as ArrayBuffer;
    const buffer = this.out.get(ab);
    if (buffer) {
      this.out.delete(ab);
      this.recycling = true;
      if (this.destroyed) return this.options.budget.releaseBuffer(buffer);
      const waiter = this.waiter;
      this.waiter = undefined;
      if (waiter) waiter.resolve(buffer);
      else {
        this.spare.push(buffer);
        this.fill();
      }
    } else if (this.released.has(ab)) {
      this.released.delete(ab);
      this.recycling = true;
      this.options.budget.adopt(Buffer.from(ab, 0, ab.byteLength));
    }
  }

  override _read(): void {
    if (!this.pumping) void this.pump();
  }

  private held(): number {
    return this.queue.length + this.out.size + this.spare.length;
  }

  /** Fetches ahead while the budget (or a recycled window) allows, without waiting. */
  private fill(): void {
    while (!this.destroyed && this.next <= this.end && this.fetching < this.options.readAhead) {
      const buffer = this.spare.pop() ?? this.newBuffer();
      if (!buffer) return;
      this.launch(buffer);
    }
  }

  /** A buffer from the budget if it has room now and this stream may hold one more. */
  private newBuffer(): Buffer | undefined {
    for (;;) {
      if (this.held() < this.options.maxHeld) {
        const buffer = this.options.budget.tryAcquireBuffer(this.options.windowSize);
        if (buffer) return buffer;
      }
      // A consumer not known to recycle has taken the windows handed over: theirs is the room.
      if (!this.releaseOldestOut()) return undefined;
    }
  }

  private launch(buffer: Buffer): void {
    const bytes = Math.min(this.options.windowSize, this.end - this.next + 1);
    const view = buffer.subarray(0, bytes);
    this.fetching++;
    const done = this.options.fetch(this.next, view, this.controller.signal).finally(() => {
      this.fetching--;
      this.fill(); // a window arrived: the next may start (out of order: later windows wait in the queue)
    });
    done.catch(() => undefined); // awaited in order by pump(), or settled by _destroy()
    this.queue.push({ buffer, view, done });
    this.next += bytes;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        this.fill();
        if (this.queue.length === 0) {
          if (this.next > this.end) {
            this.push(null);
            return;
          }
          const buffer = await this.guaranteed();
          if (this.destroyed) {
            this.options.budget.releaseBuffer(buffer); // granted as the read ended: nothing else has it
            return;
          }
          this.launch(buffer);
        }
        const window = this.queue[0]!;
        await window.done;
        if (this.destroyed) return;
        this.queue.shift();
        this.out.set(window.buffer.buffer as ArrayBuffer, window.buffer);
        this.fill();
        if (!this.push(window.view)) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  /** A buffer for the next window when none is on its way: waits, but never on ourselves. */
  private guaranteed(): Promise<Buffer> {
    const spare = this.spare.pop();
    if (spare) return Promise.resolve(spare);
    // A recycling consumer hands back a window once the socket wrote it: that one is ours.
    if (this.out.size > 0 && this.recycling) return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
    // Any other has taken them (it asks for more): their budget goes to the next window.
    this.releaseOut();
    return this.options.budget.acquireBuffer(this.options.windowSize, this.controller.signal);
  }

  /** The oldest window handed over and not recycled goes back to the budget (not the pool), unless the consumer recycles. */
  private releaseOldestOut(): boolean {
    if (this.recycling) return false;
    const oldest = this.out.entries().next();
    if (oldest.done) return false;
    const [ab, buffer] = oldest.value;
    this.out.delete(ab);
    this.released.add(ab);
    this.options.budget.release(buffer.length);
    return true;
  }

  /** Windows handed over go back to the budget, not to the pool: the consumer may still hold them. */
  private releaseOut(): void {
    for (const [ab, buffer] of this.out) {
      this.released.add(ab);
      this.options.budget.release(buffer.length);
    }
    this.out.clear();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const { budget } = this.options;
    this.controller.abort(err ?? new Error('read ended'));
    this.waiter?.reject(err ?? new Error('read ended'));
    this.waiter = undefined;
    for (const buffer of this.spare.splice(0)) budget.releaseBuffer(buffer);
    this.releaseOut();
    const fetching = this.queue.splice(0);
    // A window being fetched is pooled again only once its fetch settled: nothing writes it then.
    void Promise.allSettled(fetching.map((w) => w.done)).then(() => {
      for (const w of fetching) budget.releaseBuffer(w.buffer);
      callback(err);
    });
  }
}
