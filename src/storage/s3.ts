// S3-compatible object storage (AWS S3, MinIO, Ceph RGW, OpenStack Swift's S3 API) through the
// minio client. Writes stream with bounded memory: the body is cut into parts of `partSize`, at
// most `concurrency` of them in flight, and an object is invisible until its upload completes.
// (minio's own putObject buffers a ~550 MB part when the size is unknown, so multipart is driven
// here with its low-level calls.)
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { Client } from 'minio';
import type { ByteRange, ListOptions, ObjectInfo, ObjectStore, OpOptions, PresignedReader, PutOptions } from './driver.js';
import { ObjectNotFoundError, StorageUnavailableError } from './errors.js';
import { readAll } from './streams.js';

export interface S3Options {
  endpoint: string;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
  pathStyle: boolean;
  /** Key prefix inside the bucket: "" or ending in "/". */
  prefix: string;
  partSize: number;
  concurrency: number;
  createBucket: boolean;
  /** Blob GETs may be redirected to presigned URLs (used by the HTTP layer). */
  redirect: boolean;
}

/** Large reads go in windows of this size, this many at a time (bounded by storage.s3.concurrency). */
const READ_WINDOW = 8 * 1024 * 1024;
const READ_AHEAD = 3;

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchObject']);

export class S3Store implements ObjectStore, PresignedReader {
  readonly description: string;
  private readonly client: Client;

  constructor(private readonly options: S3Options) {
    const url = new URL(options.endpoint);
    const useSSL = url.protocol === 'https:';
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      region: options.region,
      pathStyle: options.pathStyle,
    });
    this.description = `s3:${url.origin}/${options.bucket}/${options.prefix}`;
  }

  async check(): Promise<void> {
    const where = `${this.options.endpoint} bucket ${this.options.bucket}`;
    try {
      if (!(await this.client.bucketExists(this.options.bucket))) {
        if (!this.options.createBucket) throw new Error('bucket does not exist (storage.s3.createBucket is false)');
        await this.client.makeBucket(this.options.bucket, this.options.region);
      }
      const probe = `${this.options.prefix}_probe/${process.pid}-${Date.now()}`;
      await this.client.putObject(this.options.bucket, probe, Buffer.from('ok'));
      await this.client.removeObject(this.options.bucket, probe);
    } catch (err) {
      const reason = (err as { code?: string }).code ?? (err as Error).message;
      throw new StorageUnavailableError(`s3 store ${where} is not usable: ${reason}: ${(err as Error).message}`, { cause: err });
    }
  }

  async put(key: string, body: Readable | Uint8Array, options: PutOptions = {}): Promise<number> {
    const name = this.name(key);
    try {
      if (body instanceof Uint8Array) {
        await this.client.putObject(this.options.bucket, name, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
        return body.byteLength;
      }
      return await this.putStream(name, body, options);
    } catch (err) {
      if (!(body instanceof Uint8Array)) body.destroy();
      throw this.wrap(err, key);
    }
  }

  async get(key: string, range?: ByteRange, _options: OpOptions = {}): Promise<Readable> {
    try {
      if (!range) return await this.client.getObject(this.options.bucket, this.name(key));
      if (range.end !== undefined && range.end - range.start + 1 > 2 * READ_WINDOW) {
        return await this.getWindows(key, range.start, range.end);
      }
      const length = range.end === undefined ? 0 : range.end - range.start + 1;
      return await this.client.getPartialObject(this.options.bucket, this.name(key), range.start, length);
    } catch (err) {
      throw this.wrap(err, key);
    }
  }

  /**
   * A large range read as consecutive windows fetched a few at a time and streamed in order: one
   * GET stream from Swift or S3 is slower than the client's link, several in parallel are not.
   */
  private async getWindows(key: string, start: number, end: number): Promise<Readable> {
    const fetchWindow = (from: number): Promise<Buffer> => {
      const to = Math.min(from + READ_WINDOW - 1, end);
      const p = this.client
        .getPartialObject(this.options.bucket, this.name(key), from, to - from + 1)
        .then((stream) => readAll(stream))
        .catch((err: unknown) => {
          throw this.wrap(err, key);
        });
      p.catch(() => undefined); // awaited in order below; never an unhandled rejection meanwhile
      return p;
    };
    const ahead = Math.max(1, Math.min(this.options.concurrency, READ_AHEAD));
    const inFlight: Array<Promise<Buffer>> = [];
    let next = start;
    const fill = () => {
      while (next <= end && inFlight.length < ahead) {
        inFlight.push(fetchWindow(next));
        next += READ_WINDOW;
      }
    };
    fill();
    // The first window is awaited here, so a missing object fails get() itself, as the contract says.
    const first = await inFlight.shift()!;
    async function* windows(): AsyncGenerator<Buffer> {
      fill();
      yield first;
      while (inFlight.length > 0) {
        const window = await inFlight.shift()!;
        fill();
        yield window;
      }
    }
    return Readable.from(windows(), { objectMode: false });
  }

  async presignedGetUrl(key: string, expirySeconds: number): Promise<string> {
    try {
      return await this.client.presignedGetObject(this.options.bucket, this.name(key), expirySeconds);
    } catch (err) {
      throw this.wrap(err, key);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await this.client.statObject(this.options.bucket, this.name(key));
      return { key, size: st.size, modified: st.lastModified };
    } catch (err) {
      const wrapped = this.wrap(err, key);
      if (wrapped instanceof ObjectNotFoundError) return undefined;
      throw wrapped;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.removeObject(this.options.bucket, this.name(key));
    } catch (err) {
      const wrapped = this.wrap(err, key);
      if (!(wrapped instanceof ObjectNotFoundError)) throw wrapped;
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    const fullPrefix = this.name(prefix);
    const startAfter = options.startAfter === undefined ? '' : this.name(options.startAfter);
    let token = '';
    do {
      options.signal?.throwIfAborted();
      let page: Awaited<ReturnType<Client['listObjectsV2Query']>>;
      try {
        page = await this.client.listObjectsV2Query(this.options.bucket, fullPrefix, token, '', 1000, token ? '' : startAfter);
      } catch (err) {
        throw this.wrap(err, prefix);
      }
      for (const obj of page.objects) {
        if (!obj.name) continue;
        yield { key: obj.name.slice(this.options.prefix.length), size: obj.size, modified: obj.lastModified };
      }
      token = page.isTruncated ? page.nextContinuationToken : '';
    } while (token);
  }

  /**
   * Streams a body into one object. A body that fits in one part is a single PUT; a larger one is
   * a multipart upload, aborted on any failure so nothing partial remains.
   */
  private async putStream(name: string, body: Readable, options: PutOptions): Promise<number> {
    const { bucket, partSize, concurrency } = this.options;
    const signal = options.signal;
    // Part buffers are recycled: at most concurrency + 1 exist, and none is left for the GC.
    const spare: Buffer[] = [];
    const parts = cutParts(body, partSize, () => spare.pop() ?? Buffer.allocUnsafe(partSize), signal);
    const first = await parts.next();
    const firstPart = first.done ? Buffer.alloc(0) : first.value;
    const second = first.done ? first : await parts.next();
    if (second.done) {
      await this.client.putObject(bucket, name, firstPart);
      return firstPart.length;
    }

    const uploadId = await this.client.initiateNewMultipartUpload(bucket, name, {});
    const etags: Array<{ part: number; etag: string }> = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let total = 0;
    let partNumber = 0;
    const upload = (payload: Buffer) => {
      const part = ++partNumber;
      total += payload.length;
      const task = this.client
        .uploadPart({ bucketName: bucket, objectName: name, uploadID: uploadId, partNumber: part, headers: {} }, payload)
        .then((res) => void etags.push({ part, etag: res.etag }))
        .catch((err: unknown) => void (failure ??= err))
        .finally(() => {
          inFlight.delete(task);
          if (payload.length === partSize) spare.push(payload);
        });
      inFlight.add(task);
    };
    try {
      upload(firstPart);
      upload(second.value);
      for await (const payload of parts) {
        // Back-pressure: read no further while `concurrency` parts are on their way.
        while (inFlight.size >= concurrency && failure === undefined) await Promise.race(inFlight);
        if (failure !== undefined) throw failure;
        upload(payload);
      }
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      signal?.throwIfAborted();
      etags.sort((a, b) => a.part - b.part);
      await this.client.completeMultipartUpload(bucket, name, uploadId, etags);
      return total;
    } catch (err) {
      await Promise.allSettled(inFlight);
      await this.client.abortMultipartUpload(bucket, name, uploadId).catch(() => undefined);
      throw err;
    }
  }

  private name(key: string): string {
    return this.options.prefix + key;
  }

  /**
   * Not found is the caller's business; an abort is the client's; anything else the store (or a
   * proxy in front of it, whose 502/504 minio reports with an empty code) did: unavailable.
   */
  private wrap(err: unknown, key: string): Error {
    const code = (err as { code?: string })?.code;
    if (code && NOT_FOUND.has(code)) return new ObjectNotFoundError(key);
    if ((err as Error)?.name === 'AbortError' || code === 'ABORT_ERR') return err as Error;
    if (err instanceof StorageUnavailableError || err instanceof ObjectNotFoundError) return err;
    return new StorageUnavailableError(`s3 ${this.options.endpoint}: ${code || 'error'}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }

  async close(): Promise<void> {
    // The minio client keeps no resources that need releasing.
  }
}

/**
 * Cuts a stream into parts of exactly `size` bytes (the last one shorter), each a buffer from
 * `acquire` filled in place. A part is the caller's until it hands the buffer back to `acquire`.
 */
async function* cutParts(body: Readable, size: number, acquire: () => Buffer, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let part = acquire();
  let filled = 0;
  const onAbort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of body) {
      let buf = chunk as Buffer;
      while (buf.length > 0) {
        const take = Math.min(size - filled, buf.length);
        buf.copy(part, filled, 0, take);
        filled += take;
        buf = buf.subarray(take);
        if (filled === size) {
          yield part;
          part = acquire();
          filled = 0;
        }
      }
    }
    signal?.throwIfAborted();
    if (filled > 0) yield part.subarray(0, filled);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
