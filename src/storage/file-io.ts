// Large-transfer file I/O for the filesystem driver. Every read or write handed to libuv's thread
// pool costs a round trip between threads, which on a busy machine is a scheduler wake-up each:
// so reads and writes are large, and a few are kept on their way at once.
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { RecyclingStream } from './driver.js';
import { IntegrityError } from './errors.js';

/** Bytes per read of a large object. */
export const READ_CHUNK = 2 * 1024 * 1024;
/** Reads on their way at once per stream (memory per stream: about (READ_AHEAD + 1) x READ_CHUNK). */
export const READ_AHEAD = 2;
/** Received chunks are gathered into writes of at least this many bytes (one writev each). */
export const WRITE_BATCH = 2 * 1024 * 1024;
/** While a large object is written, its data is flushed to disk in the background this often. */
export const FLUSH_EVERY = 32 * 1024 * 1024;
/** Read buffers kept for the next read once their stream is done with them (16 MiB at most). */
export const IDLE_READ_BUFFERS = 8;

/**
 * Read buffers handed back by consumers, shared by every stream of the process. A fresh 2 MiB
 * buffer costs the kernel 512 page faults on its first fill and the GC a late free, so a pull of
 * 22 layers (a stream each) cost 0.8 CPU s per GB against 0.5 for one large blob (docs/memory.md).
 * Every buffer here was written to its socket completely; its old bytes are overwritten by the next
 * read before anything sees them (a short read fails the stream).
 */
const idleReadBuffers: Buffer[] = [];

let allocated = 0;

/** Read buffers of READ_CHUNK bytes allocated so far (tests read it). */
export function readBuffersAllocated(): number {
  return allocated;
}

function readBuffer(): Buffer {
  const idle = idleReadBuffers.pop();
  if (idle) return idle;
  allocated++;
  return Buffer.allocUnsafeSlow(READ_CHUNK);
}

/**
 * Streams bytes [start, end) of an open file, READ_CHUNK at a time with READ_AHEAD reads on their
 * way, in order and with back-pressure. Closes the file when it ends or is destroyed. A file that
 * ends before `end` fails the stream with an IntegrityError.
 */
export class FileRangeStream extends Readable implements RecyclingStream {
  private next: number;
  private readonly pending: Array<Promise<Buffer>> = [];
  private pumping = false;
  /** Buffers this stream handed out and the consumer has not handed back yet. */
  private readonly own = new WeakSet<ArrayBuffer>();

  constructor(
    private readonly handle: FileHandle,
    private readonly key: string,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.next = start;
  }

  override _read(): void {
    if (!this.pumping) void this.pump();
  }

  private readAhead(): void {
    while (this.pending.length < READ_AHEAD && this.next < this.end) {
      const length = Math.min(READ_CHUNK, this.end - this.next);
      const buffer = this.buffer(length);
      const at = this.next;
      const read = this.handle.read(buffer, 0, length, at).then(({ bytesRead }) => {
        // The file ends before the range does: truncated, or the range is wrong. Either way the
        // reader must not see a clean end with bytes missing.
        if (bytesRead !== length) throw new IntegrityError(this.key, `object ends at ${at + bytesRead}, before the end of the range read (${this.end})`);
        return buffer;
      });
      read.catch(() => undefined); // awaited in order by pump()
      this.pending.push(read);
      this.next += length;
    }
  }

  /**
   * The consumer is done with `chunk` (written to the socket): its memory may be read into again.
   * Only a consumer that knows this calls it (the blob GET handler); others leave it to the GC.
   */
  recycle(chunk: Buffer): void {
    const ab = chunk.buffer as ArrayBuffer;
    if (!this.own.has(ab)) return;
    this.own.delete(ab);
    if (idleReadBuffers.length < IDLE_READ_BUFFERS && ab.byteLength === READ_CHUNK) idleReadBuffers.push(Buffer.from(ab, 0, READ_CHUNK));
  }

  private buffer(length: number): Buffer {
    // Small reads (documents, the tail of a blob) get a buffer of their own: the pool is for the
    // chunks of large reads, which a recycling consumer hands back.
    const buffer = length > READ_CHUNK / 2 ? readBuffer().subarray(0, length) : Buffer.allocUnsafeSlow(length);
    this.own.add(buffer.buffer as ArrayBuffer);
    return buffer;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        this.readAhead();
        const read = this.pending.shift();
        if (!read) {
          this.push(null);
          return;
        }
        const chunk = await read;
        if (this.destroyed) return;

        if (!this.push(chunk)) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const reads = this.pending.splice(0);
    Promise.allSettled(reads)
      .then(() => this.handle.close())
      .then(
        () => callback(err),
        (closeErr: Error) => callback(err ?? closeErr),
      );
  }
}

/**
 * Writes everything from `source` to `handle`, gathering chunks into writes of WRITE_BATCH bytes
 * (writev: no copy) with one write on its way while the next batch gathers. With `flush`, starts
 * an fdatasync in the background every FLUSH_EVERY bytes, so the disk writes while data still
 * arrives and the final fsync has little left to do. Returns the bytes written.
 */
export async function writeBatched(source: AsyncIterable<Buffer | Uint8Array>, handle: FileHandle, flush: boolean): Promise<number> {
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let written = 0;
  let position = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let flushing: Promise<void> | undefined;
  let sinceFlush = 0;
  const writeAll = async (buffers: Buffer[], at: number, bytes: number) => {
    let done = 0;
    while (done < bytes) {
      const { bytesWritten } = await handle.writev(done === 0 ? buffers : remainder(buffers, done), at + done);
      done += bytesWritten;
    }
  };
  const send = async () => {
    await inFlight;
    const buffers = batch;
    const bytes = batchBytes;
    batch = [];
    batchBytes = 0;
    inFlight = writeAll(buffers, position, bytes);
    inFlight.catch(() => undefined); // awaited before the next write and at the end
    position += bytes;
    written += bytes;
    sinceFlush += bytes;
    if (flush && sinceFlush >= FLUSH_EVERY && !flushing) {
      sinceFlush = 0;
      const after = inFlight;
      flushing = after.then(() => handle.datasync()).finally(() => (flushing = undefined));
      flushing.catch(() => undefined); // awaited at the end
    }
  };
  try {
    for await (const chunk of source) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (buffer.length === 0) continue;
      batch.push(buffer);
      batchBytes += buffer.length;
      if (batchBytes >= WRITE_BATCH) await send();
    }
    if (batchBytes > 0) await send();
    await inFlight;
  } finally {
    await Promise.allSettled([inFlight, flushing]);
  }
  await flushing;
  return written;
}

function remainder(buffers: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
