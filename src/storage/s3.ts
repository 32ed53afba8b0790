// S3-compatible object storage (AWS S3, MinIO, Ceph RGW, OpenStack Swift's S3 API) through the
// minio client.
//
// Writes stream with bounded memory: the body is cut into parts of `partSize` bytes, at most
// `concurrency` of them on their way and one more filling, so a put holds at most
// (concurrency + 1) x partSize whatever the object's size. A body that fits in one part is a single
// PUT; a larger one is a multipart upload, invisible until completed and aborted on any failure.
// minio's own putObject is not used for streams: with an unknown size it buffers one part of
// ~560 MB (5 TiB / 10,000 parts), and for large known sizes it resumes any pending upload of the
// same key (findUploadId), which mixes the parts of concurrent writers, and never aborts on failure.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable, addAbortSignal } from 'node:stream';
import { setTimeout } from 'node:timers/promises';
import { Client } from 'minio';
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore, OpOptions, PresignedReader, PutOptions } from './driver.js';
import { MemoryBudget } from './budget.js';
import { IntegrityError, ObjectNotFoundError, StorageUnavailableError } from './errors.js';
import { S3AnswerError, UnframedAnswerError, readRangeInto } from './s3-range-reader.js';
import { WindowStream } from './s3-windows.js';

export interface S3Options {
  /** URL of the S3 API, e.g. http://127.0.0.1:8080. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
  pathStyle: boolean;
  /** Key prefix inside the bucket: "" or ending in "/". */
  prefix: string;
  /** Multipart part size in bytes (5 MiB..5 GiB); also the largest single PUT. */
  partSize: number;
  /** Parts uploaded in parallel by one put. */
  concurrency: number;
  /** check() creates a missing bucket instead of failing. */
  createBucket: boolean;
  /** Blob GETs may be redirected to presigned URLs (read by the HTTP layer, not by this driver). */
  redirect?: boolean;
  /**
   * Bytes of part buffers and read windows all transfers of this process may hold at once
   * (storage.s3.memoryBudget). Each transfer is guaranteed one buffer; see ./budget.ts.
   */
  memoryBudget?: number;
  /** A read window that receives nothing for this long is fetched again (default 15 s; tests shorten it). */
  readStallMs?: number;
}

/** storage.s3.memoryBudget's default: 16 part buffers of the default 16 MiB. */
export const DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024;

/** A request whose socket sees no traffic this long fails: a hung store must not hang requests forever. */
const IDLE_TIMEOUT_MS = 120_000;
/** Aborting a failed multipart upload is best effort: on a hung store it is given up after this. */
const ABORT_UPLOAD_TIMEOUT_MS = 10_000;

/**
 * The signal of the store call whose minio requests are being made. minio's calls take no signal,
 * so the transport (withIdleTimeout) reads it here and destroys its request when it aborts: a call
 * given up by its deadline or its client ends its requests at once, and a part buffer a hung
 * request was sending goes back to the budget then, not at the 120 s socket timeout (uploads
 * waiting for that buffer waited as long).
 */
const callSignal = new AsyncLocalStorage<AbortSignal>();

/** Runs `op` with its minio requests bound to `signal`. */
function bound<T>(signal: AbortSignal | undefined, op: () => Promise<T>): Promise<T> {
  return signal ? callSignal.run(signal, op) : op();
}
/** Large ranges are read in windows of this size, a few at a time (see s3-windows.ts). */
const READ_WINDOW = 8 * 1024 * 1024;
/** Windows of one read on their way at once, when the memory budget has room. */
const READ_AHEAD = 4;
/**
 * Windows one read holds at most: READ_AHEAD on their way, plus those the client's socket still
 * writes (a window is handed back once written; see WindowStream).
 */
const READ_HELD = READ_AHEAD + 2;
/** Lifetime of the presigned URL of one window's GET (used at once; the margin is for clock skew). */
const WINDOW_URL_EXPIRY_S = 15 * 60;
/** A window that receives nothing for this long is abandoned and fetched again. */
const WINDOW_STALL_MS = 15_000;

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);
/**
 * Answers worth another try: S3 throttling (SlowDown is a 503, some stores answer 429) and
 * transient server errors. minio reports these statuses as "Retryable HTTP status: N" without
 * the store's code; network failures keep theirs.
 */
const RETRYABLE_STATUS = /^(408|429|499|5\d\d)$/;
const TRANSIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);
/** Tries of one idempotent call before the store counts as unavailable; backoff 100 ms, then 400 ms. */
const ATTEMPTS = 3;
const BACKOFF_MS = 100;
/** A concurrent start-up (another replica) may create the bucket first; the probe write decides. */
const BUCKET_EXISTS = new Set(['BucketAlreadyOwnedByYou', 'BucketAlreadyExists']);

export class S3Store implements ObjectStore, PresignedReader {
  readonly description: string;
  /** LastModified is in whole seconds. */
  readonly timeResolutionMs = 1000;
  private readonly client: Client;
  private readonly agent: http.Agent;
  /** "endpoint, bucket" in every error message, so an operator knows which store failed. */
  private readonly where: string;
  /** Part buffers and read windows of every transfer of this store share this budget. */
  readonly budget: MemoryBudget;
  /**
   * Windows are read straight into their buffers (s3-range-reader.ts) until the store answers in a
   * way that reader does not take (chunked): then through minio, with a copy, from then on.
   */
  private directReads = true;

  constructor(private readonly options: S3Options) {
    this.budget = new MemoryBudget(Math.max(options.memoryBudget ?? DEFAULT_MEMORY_BUDGET, options.partSize), [options.partSize, READ_WINDOW]);
    const url = new URL(options.endpoint);
    const useSSL = url.protocol === 'https:';
    this.agent = useSSL ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      region: options.region,
      pathStyle: options.pathStyle,
      transport: withIdleTimeout(useSSL ? https : http, IDLE_TIMEOUT_MS),
      transportAgent: this.agent,
      // minio's own retry sleeps without regard to aborts and logs with console.warn; retried()
      // below retries idempotent calls itself (a throttling status reaches it as "Retryable HTTP
      // status: N", minio does not read the store's error body for those).
      retryOptions: { disableRetry: true },
    });
    this.where = `${url.origin} bucket ${options.bucket}`;
    this.description = `s3:${url.origin}/${options.bucket}/${options.prefix}`;
  }

  /** Proves the endpoint answers, the credentials are valid and may write, and the bucket exists. */
  async check(options: OpOptions = {}): Promise<void> {
    const { bucket, region, prefix, createBucket } = this.options;
    try {
      options.signal?.throwIfAborted();
      if (!(await this.client.bucketExists(bucket))) {
        if (!createBucket) throw new Error('bucket does not exist (storage.s3.createBucket is false)');
        await this.client.makeBucket(bucket, region).catch((err: unknown) => {
          if (!BUCKET_EXISTS.has(errorCode(err) ?? '')) throw err;
        });
      }
      const probe = `${prefix}_probe/${randomUUID()}`;
      await this.client.putObject(bucket, probe, Buffer.from('ok'));
      await this.client.removeObject(bucket, probe);
    } catch (err) {
      throw new StorageUnavailableError(`s3 store ${this.where} is not usable: ${describe(err)}`, { cause: err });
    }
  }

  async put(key: string, body: Readable | Uint8Array, options: PutOptions = {}): Promise<number> {
    // Bytes that fit in a part are sent as they are: they are in memory already, so a budget buffer
    // would only add a copy, and small writes (upload state, manifests, links) must not queue behind
    // large uploads waiting for the budget (they would miss the store deadline).
    if (body instanceof Uint8Array && body.byteLength <= this.options.partSize) {
      options.signal?.throwIfAborted();
      const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      await this.call(key, () => retried(() => this.client.putObject(this.options.bucket, this.name(key), bytes, bytes.length), options.signal));
      return bytes.length;
    }
    // Larger arrays take the stream path: cut into parts like any body.
    const source = body instanceof Uint8Array ? Readable.from([body]) : body;
    const size = body instanceof Uint8Array ? body.byteLength : options.size;
    try {
      return await bound(options.signal, () => this.putStream(key, source, size, options.signal, options.onMemoryWait));
    } catch (err) {
      source.destroy();
      throw err;
    }
  }

  async get(key: string, range?: ByteRange, options: OpOptions = {}): Promise<Readable> {
    options.signal?.throwIfAborted();
    const start = range?.start ?? 0;
    const end = range?.end;
    if (end !== undefined && end - start + 1 > 2 * READ_WINDOW) {
      const stream = await WindowStream.open(
        {
          budget: this.budget,
          windowSize: READ_WINDOW,
          readAhead: READ_AHEAD,
          maxHeld: READ_HELD,
          fetch: (from, into, signal) => this.call(key, () => retried(() => this.readWindow(key, from, into, signal), signal)),
        },
        start,
        end,
        options.signal,
      );
      return stream;
    }
    let source: AsyncIterable<Buffer>;
    const length = end === undefined ? 0 : end - start + 1; // 0: to the last byte
    try {
      source = await retried(() => this.client.getPartialObject(this.options.bucket, this.name(key), start, length), options.signal);
    } catch (err) {
      // A range that starts at the end of the object is empty, as a file read there is; one with
      // an end past the object's is not a quietly short read.
      if (errorCode(err) !== 'InvalidRange') throw this.storeError(err, key);
      if (end !== undefined) throw new IntegrityError(key, `object ends before the range read (${start}-${end})`);
      source = Readable.from([]);
    }
    return this.relay(source, key, options.signal, end === undefined ? undefined : end - start + 1);
  }

  async stat(key: string, options: OpOptions = {}): Promise<ObjectInfo | undefined> {
    options.signal?.throwIfAborted();
    try {
      const st = await retried(() => this.client.statObject(this.options.bucket, this.name(key)), options.signal);
      return { key, size: st.size, modified: st.lastModified };
    } catch (err) {
      const wrapped = this.storeError(err, key);
      if (wrapped instanceof ObjectNotFoundError) return undefined;
      throw wrapped;
    }
  }

  async delete(key: string, options: OpOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    try {
      await retried(() => this.client.removeObject(this.options.bucket, this.name(key)), options.signal);
    } catch (err) {
      const wrapped = this.storeError(err, key);
      if (!(wrapped instanceof ObjectNotFoundError)) throw wrapped;
    }
  }

  /** ListObjectsV2 pages of 1000, in the store's (byte) order, with this store's prefix removed. */
  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    const { bucket } = this.options;
    const startAfter = options.startAfter === undefined ? '' : this.name(options.startAfter);
    let token = '';
    do {
      options.signal?.throwIfAborted();
      const page = await this.call(prefix, () =>
        retried(
          // start-after only matters on the first page; the continuation token carries it on.
          () => this.client.listObjectsV2Query(bucket, this.name(prefix), token, '', 1000, token ? '' : startAfter),
          options.signal,
        ),
      );
      for (const obj of page.objects) {
        if (obj.name) yield { key: obj.name.slice(this.options.prefix.length), size: obj.size, modified: obj.lastModified };
      }
      token = page.isTruncated ? page.nextContinuationToken : '';
    } while (token);
  }

  async presignedGetUrl(key: string, expirySeconds: number): Promise<string> {
    return this.call(key, () => this.client.presignedGetObject(this.options.bucket, this.name(key), expirySeconds));
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  /** One PUT when the body fits in a part, else a multipart upload. */
  private async putStream(key: string, body: Readable, size: number | undefined, signal?: AbortSignal, onMemoryWait?: (waiting: boolean) => void): Promise<number> {
    signal?.throwIfAborted();
    // A body of known size smaller than a part gets a buffer of its own size, not of partSize.
    const bufferSize = size === undefined ? this.options.partSize : Math.max(1, Math.min(size, this.options.partSize));
    const buffers = new PartBuffers(this.budget, bufferSize, this.options.concurrency + 1, signal, onMemoryWait);
    try {
      // The first buffer is taken before a byte of the body is read: a put waiting its turn for
      // memory holds none of its client's bytes (the request stays unread, so TCP holds the
      // client back), and the store has been handed nothing, so no store deadline runs.
      if (size !== 0) await buffers.reserve();
      const parts = cutParts(body, { bufferSize, expected: size, signal, acquire: () => buffers.acquire() });
      const first = await parts.next();
      // A short first part is the whole body; so is a full one when the size says so. A full first
      // part of a body of unknown size starts a multipart upload at once: reading on to find out
      // would need a second buffer the budget may not have.
      if (first.done || first.value.length < bufferSize || size === bufferSize) {
        const bytes = first.done ? Buffer.alloc(0) : first.value;
        if (!first.done) await parts.next(); // the end of the body: checks its declared size
        await this.call(key, () => retried(() => this.client.putObject(this.options.bucket, this.name(key), bytes, bytes.length), signal));
        // Stored: the store has every byte (minio ends its request with the buffer and answers
        // after the store read it all), so the buffer may be filled by the next upload.
        if (!first.done) buffers.recycle(first.value);
        return bytes.length;
      }
      return await this.putMultipart(key, first.value, parts, buffers, signal);
    } finally {
      buffers.close();
    }
  }

  /**
   * Uploads `head` then the rest of `parts`, `concurrency` at a time, and completes the upload only
   * when every part is stored and the put was not aborted. Any failure aborts the upload.
   */
  private async putMultipart(
    key: string,
    head: Buffer,
    parts: AsyncIterable<Buffer>,
    buffers: PartBuffers,
    signal?: AbortSignal,
  ): Promise<number> {
    const recycle = (part: Buffer, failure?: Error) => buffers.recycle(part, failure);
    const { bucket, concurrency } = this.options;
    const name = this.name(key);
    const uploadID = await this.call(key, () => this.client.initiateNewMultipartUpload(bucket, name, {}));
    const etags: Array<{ part: number; etag: string }> = [];
    const inFlight = new Set<Promise<void>>();
    let failure: Error | undefined;
    let total = 0;
    let partNumber = 0;

    const send = async (payload: Buffer) => {
      // Back-pressure: read no further while `concurrency` parts are on their way.
      while (inFlight.size >= concurrency && !failure) await Promise.race(inFlight);
      if (failure) throw failure;
      const part = ++partNumber;
      total += payload.length;
      // The buffer is recycled only once its part is stored: the store answered after reading every
      // byte, so no request of minio's still reads it. After a failure a request may still be
      // writing it (an early error answer), so that buffer is not filled again; the put fails.
      const task = retried(() => this.client.uploadPart({ bucketName: bucket, objectName: name, uploadID, partNumber: part, headers: {} }, payload), signal)
        .then((res) => {
          etags.push({ part, etag: res.etag });
          recycle(payload);
        })
        .catch((err: unknown) => {
          failure ??= this.storeError(err, key);
          recycle(payload, failure);
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    };

    try {
      await send(head);
      for await (const payload of parts) await send(payload);
      await Promise.all(inFlight);
      if (failure) throw failure;
      signal?.throwIfAborted();
      etags.sort((a, b) => a.part - b.part);
      await this.call(key, () => this.client.completeMultipartUpload(bucket, name, uploadID, etags));
      return total;
    } catch (err) {
      // Parts still on their way end soon: with the signal aborted their requests are destroyed.
      await Promise.allSettled(inFlight);
      // The buffers go back to the budget before the abort, which a hung store does not answer.
      buffers.close();
      // Best effort: if the store is down the upload stays, invisible, until the store expires it.
      await bound(AbortSignal.timeout(ABORT_UPLOAD_TIMEOUT_MS), () => this.client.abortMultipartUpload(bucket, name, uploadID)).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Fills `into` with the object's bytes from `from` on; a stall fails as ETIMEDOUT (retried).
   * Settles only once nothing writes `into` any more.
   */
  private async readWindow(key: string, from: number, into: Buffer, signal: AbortSignal): Promise<void> {
    const stallMs = this.options.readStallMs ?? WINDOW_STALL_MS;
    if (this.directReads) {
      // Signed here, without a round trip (the client knows its region).
      const url = await this.client.presignedGetObject(this.options.bucket, this.name(key), WINDOW_URL_EXPIRY_S);
      try {
        return await readRangeInto({ url, from, into, key, stallMs, signal });
      } catch (err) {
        if (!(err instanceof UnframedAnswerError)) throw err;
        this.directReads = false;
      }
    }
    const response = await this.client.getPartialObject(this.options.bucket, this.name(key), from, into.length);
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = globalThis.setTimeout(() => fail(Object.assign(new Error(`window at ${from} of ${key} stalled for ${stallMs / 1000} s`), { code: 'ETIMEDOUT' })), stallMs);
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        response.destroy();
        reject(err);
      };
      const onAbort = () => fail(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      response.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (received + chunk.length > into.length) return fail(new Error(`s3 answer for ${key} has more bytes than the range read at ${from} (${into.length})`));
        chunk.copy(into, received);
        received += chunk.length;
        timer.refresh();
      });
      response.once('error', fail);
      response.once('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        // A response that ends cleanly but short: the object is shorter than the range.
        if (received !== into.length) reject(new IntegrityError(key, `object ends at ${from + received}, before the end of the range read (${from + into.length})`));
        else resolve();
      });
    });
  }

  /** The object's bytes as a stream whose errors are storage errors and which the signal destroys. */
  private relay(source: AsyncIterable<Buffer>, key: string, signal?: AbortSignal, expected?: number): Readable {
    const toStoreError = (err: unknown) => this.storeError(err, key);
    // Destroying the result returns the generator, which destroys the response under it.
    let started = false;
    const out = Readable.from(
      (async function* () {
        started = true;
        let received = 0;
        try {
          for await (const chunk of source) {
            received += chunk.length;
            yield chunk;
          }
        } catch (err) {
          throw toStoreError(err);
        }
        if (expected !== undefined && received < expected) throw new IntegrityError(key, `object ends before the end of the range read (${received} of ${expected} bytes)`);
      })(),
      { objectMode: false },
    );
    // Destroyed before its first read, the generator never ran and cannot close its source, the
    // response under it (its socket stays taken): close it here.
    out.once('close', () => {
      if (!started && source instanceof Readable) source.destroy();
    });
    return signal ? addAbortSignal(signal, out) : out;
  }

  private async call<T>(key: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw this.storeError(err, key);
    }
  }

  /**
   * Not found is the caller's business and an abort the client's; anything else the store, the
   * network or a proxy in front of the store did: unavailable, with the store's own code and message.
   */
  private storeError(err: unknown, key: string): Error {
    if (err instanceof ObjectNotFoundError || err instanceof StorageUnavailableError || err instanceof IntegrityError) return err;
    if (NOT_FOUND.has(errorCode(err) ?? '')) return new ObjectNotFoundError(key);
    if (err instanceof Error && err.name === 'AbortError') return err;
    return new StorageUnavailableError(`s3 ${this.where}, object ${key}: ${describe(err)}`, { cause: err });
  }

  private name(key: string): string {
    return this.options.prefix + key;
  }
}

interface CutOptions {
  /** Every part but the last has exactly this many bytes. */
  bufferSize: number;
  /** The declared size: a body longer or shorter than this fails. */
  expected?: number;
  signal?: AbortSignal;
  /** A buffer of bufferSize bytes to fill; it stays the consumer's until it is handed back. */
  acquire: () => Promise<Buffer>;
}

/** Cuts a stream into parts of `bufferSize` bytes (the last one shorter), each filled in place. */
async function* cutParts(body: Readable, { bufferSize, expected, signal, acquire }: CutOptions): AsyncGenerator<Buffer> {
  let part: Buffer | undefined;
  let filled = 0;
  let total = 0;
  const onAbort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('put aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of body) {
      let bytes = asBuffer(chunk);
      total += bytes.length;
      if (expected !== undefined && total > expected) throw new RangeError(`body is longer than its declared size ${expected}`);
      while (bytes.length > 0) {
        part ??= await acquire();
        const take = Math.min(bufferSize - filled, bytes.length);
        bytes.copy(part, filled, 0, take);
        filled += take;
        bytes = bytes.subarray(take);
        if (filled === bufferSize) {
          yield part;
          part = undefined;
          filled = 0;
        }
      }
    }
    signal?.throwIfAborted();
    if (expected !== undefined && total !== expected) throw new RangeError(`body has ${total} bytes, declared size ${expected}`);
    if (part) yield part.subarray(0, filled);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The part buffers of one put: the first is taken from the budget (waiting for room), up to
 * `max` more only when there is room now; beyond that the put reuses its own buffers as their
 * parts finish uploading. When the put ends its idle buffers go back to the budget's pool for the
 * next upload; one that was not recycled (its part failed, or the body ended midway) gives back
 * only its bytes and is left to the garbage collector, as something may still read it.
 */
class PartBuffers {
  private held = 0;
  private readonly spare: Buffer[] = [];
  private waiter: { resolve: (buffer: Buffer) => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly budget: MemoryBudget,
    private readonly size: number,
    private readonly max: number,
    private readonly signal?: AbortSignal,
    /** Told while the put waits for the budget (the store deadline stops meanwhile). */
    private readonly onMemoryWait?: (waiting: boolean) => void,
  ) {}

  /** Takes the put's guaranteed first buffer now, waiting for the budget if it must. */
  async reserve(): Promise<void> {
    this.spare.push(await this.acquire());
  }

  async acquire(): Promise<Buffer> {
    const spare = this.spare.pop();
    if (spare) return spare;
    if (this.held === 0) {
      let buffer = this.budget.tryAcquireBuffer(this.size);
      if (!buffer) {
        this.onMemoryWait?.(true);
        try {
          buffer = await this.budget.acquireBuffer(this.size, this.signal);
        } finally {
          this.onMemoryWait?.(false);
        }
      }
      this.held++;
      return buffer;
    }
    if (this.held < this.max) {
      const buffer = this.budget.tryAcquireBuffer(this.size);
      if (buffer) {
        this.held++;
        return buffer;
      }
    }
    // Every buffer of ours is on its way to the store: the next one back is ours to fill.
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => reject(this.signal?.reason instanceof Error ? this.signal.reason : new Error('aborted'));
      this.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        resolve: (buffer) => {
          this.signal?.removeEventListener('abort', onAbort);
          resolve(buffer);
        },
        reject: (err) => {
          this.signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
    });
  }

  /**
   * A part is stored and nothing reads its buffer any more: it may be filled again. With `failure`
   * its part was not stored: the buffer is not reused (a request may still be writing it) and a
   * reader waiting for a buffer gets the failure instead.
   */
  recycle(part: Buffer, failure?: Error): void {
    const waiter = this.waiter;
    if (failure) {
      this.waiter = undefined;
      waiter?.reject(failure);
      return;
    }
    if (part.buffer.byteLength !== this.size) return;
    const whole = Buffer.from(part.buffer, 0, this.size);
    this.waiter = undefined;
    if (waiter) waiter.resolve(whole);
    else this.spare.push(whole);
  }

  close(): void {
    for (const buffer of this.spare) this.budget.releaseBuffer(buffer);
    this.budget.release((this.held - this.spare.length) * this.size);
    this.held = 0;
    this.spare.length = 0;
  }
}

function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk));
}

/**
 * Fails a request whose socket stays silent for `ms` (connect included), as ETIMEDOUT, and
 * destroys it when the signal of the call that made it aborts (see callSignal).
 */
function withIdleTimeout(base: typeof http | typeof https, ms: number): { request: typeof http.request } {
  const request = (options: http.RequestOptions, callback?: (res: http.IncomingMessage) => void) => {
    const req = base.request(options, (res) => {
      // minio throws on these statuses without reading the body, which would hold the socket
      // until the idle timeout: drain it so the connection goes back to the pool.
      if (RETRYABLE_STATUS.test(String(res.statusCode))) res.resume();
      callback?.(res);
    });
    req.setTimeout(ms, () => req.destroy(Object.assign(new Error(`no answer from the store for ${ms / 1000} s`), { code: 'ETIMEDOUT' })));
    const signal = callSignal.getStore();
    if (signal) {
      const abort = () => req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      if (signal.aborted) process.nextTick(abort);
      else {
        signal.addEventListener('abort', abort, { once: true });
        req.once('close', () => signal.removeEventListener('abort', abort));
      }
    }
    return req;
  };
  return { request: request as typeof http.request };
}

/**
 * Runs an idempotent store call (its request can be sent again as it was: a stat, a delete, a
 * list page, a PUT of bytes in memory, opening a read) and tries it again on a transient failure,
 * as S3 asks of its clients when it throttles, each try bound to `signal` (see callSignal). Calls
 * that create state (starting or completing a multipart upload) and a read that fails midway are
 * not retried: the registry's client does.
 */
async function retried<T>(op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted(); // an aborted put must not be sent again and land after all
    try {
      return await bound(signal, op);
    } catch (err) {
      if (attempt >= ATTEMPTS || !isTransient(err) || signal?.aborted) throw err;
      const delay = BACKOFF_MS * 4 ** (attempt - 1) * (0.5 + Math.random()); // jitter: replicas do not retry in step
      await setTimeout(delay, undefined, { signal }).catch(() => undefined); // woken early by an abort, then thrown above
    }
  }
}

function isTransient(err: unknown): boolean {
  if (err instanceof S3AnswerError) return RETRYABLE_STATUS.test(String(err.status));
  const code = errorCode(err);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  const status = /Retryable HTTP status: (\d{3})/.exec(err instanceof Error ? err.message : String(err))?.[1];
  return status !== undefined && RETRYABLE_STATUS.test(status);
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/** "SlowDown: Please reduce your request rate.", "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:8080". */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = errorCode(err);
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}
