// Encryption at rest as a storage decorator: every object written through it (blob parts,
// indexes, manifests, links, tags, upload state) is stored as a header plus AES-256-GCM segments
// under a key only the operator's keyring can unlock. Layers above see plaintext and the same
// ObjectStore contract. Format and threat model: docs/encryption.md.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import type { Keyring } from '../crypto/keyring.js';
import { EnvelopeError, HEADER_SIZE, MAGIC, newHeader, parseHeader, segmentContext } from '../crypto/envelope.js';
import { SEGMENT_SIZE, SealStream, TAG_SIZE, openSegment, plainSize, sealedSize, segmentCount, type SegmentContext, SegmentAuthError } from '../crypto/segments.js';
import { DATA_KEYS_PREFIX, DataKeys } from './data-keys.js';
import type { ByteRange, KeyStatus, KeyStatusReader, ListOptions, ObjectInfo, ObjectStore, OpOptions, PutOptions } from './driver.js';
import { META_PREFIX } from './encryption-state.js';
import { IntegrityError, ObjectNotFoundError } from './errors.js';
import { readAll } from './streams.js';

const SEALED_SEGMENT = SEGMENT_SIZE + TAG_SIZE;

export class EncryptedStore implements ObjectStore, KeyStatusReader {
  readonly description: string;
  readonly timeResolutionMs: number | undefined;
  readonly dataKeys: DataKeys;

  constructor(
    /** The driver underneath (key management re-wraps data keys through it). */
    readonly inner: ObjectStore,
    keyring: Keyring,
    /**
     * While the store is being encrypted (`keys encrypt-store`, marker state "encrypting"), objects
     * without the envelope header are read as they are; writes are always sealed.
     */
    private readonly mixed: { acceptPlaintext?: boolean } = {},
  ) {
    this.description = `encrypted(${inner.description})`;
    this.timeResolutionMs = inner.timeResolutionMs;
    this.dataKeys = new DataKeys(inner, keyring);
  }

  keyStatus(): Promise<KeyStatus> {
    return this.dataKeys.status();
  }

  async check(options?: OpOptions): Promise<void> {
    await this.inner.check(options);
    await this.dataKeys.load();
  }

  async put(key: string, body: Readable | Uint8Array, options: PutOptions = {}): Promise<number> {
    const { id, key: dmk } = this.dataKeys.active();
    const header = newHeader(id);
    const ctx = segmentContext(dmk, header, key);
    const size = options.size ?? (body instanceof Uint8Array ? body.byteLength : undefined);
    const sealed = new SealStream(ctx);
    const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]) : body;
    pipeline(source, sealed, () => {}); // a source error destroys `sealed`, failing the put
    const withHeader = Readable.from(
      (async function* () {
        yield header.bytes;
        yield* sealed;
      })(),
      { objectMode: false },
    );
    // A generator waiting on a stalled source cannot be returned from: on abort or failure,
    // destroy the source itself so the whole chain unwinds.
    const stop = () => sealed.destroy(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'));
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      const written = await this.inner.put(key, withHeader, {
        signal: options.signal,
        onMemoryWait: options.onMemoryWait,
        size: size === undefined ? undefined : HEADER_SIZE + sealedSize(size),
      });
      return plainSize(written - HEADER_SIZE) ?? 0;
    } catch (err) {
      sealed.destroy();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', stop);
    }
  }

  async get(key: string, range?: ByteRange, options: OpOptions = {}): Promise<Readable> {
    return this.mixed.acceptPlaintext ? this.getMixed(key, range, options) : this.getSealed(key, range, options);
  }

  /**
   * Mixed mode: one read decides the format by its first bytes and serves the same bytes, so an
   * object encrypted in place meanwhile is never taken for plaintext. Plaintext ranges are read
   * from the object's start (mixed mode is temporary); a sealed object never goes back to plain.
   */
  private async getMixed(key: string, range: ByteRange | undefined, options: OpOptions): Promise<Readable> {
    const stream = await this.inner.get(key, range ? { start: 0, end: range.end } : undefined, options);
    const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head = Buffer.alloc(0);
    try {
      while (head.length < MAGIC.length) {
        const next = await chunks.next();
        if (next.done) break;
        head = Buffer.concat([head, next.value]);
      }
    } catch (err) {
      stream.destroy();
      throw err;
    }
    const all = async function* () {
      if (head.length > 0) yield head;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    };
    if (!head.subarray(0, MAGIC.length).equals(MAGIC)) {
      return Readable.from(slice(all(), range?.start ?? 0, Number.POSITIVE_INFINITY), { objectMode: false });
    }
    if (range) {
      stream.destroy();
      return this.getSealed(key, range, options);
    }
    return Readable.from(this.openAll(key, Readable.from(all(), { objectMode: false })), { objectMode: false });
  }

  private async getSealed(key: string, range: ByteRange | undefined, options: OpOptions): Promise<Readable> {
    if (!range) {
      const stream = await this.inner.get(key, undefined, options);
      return Readable.from(this.openAll(key, stream), { objectMode: false });
    }
    const stored = await this.inner.stat(key, options);
    if (!stored) throw new ObjectNotFoundError(key);
    // The stored size must be one that sealing produces (else the object was cut mid-segment).
    const total = this.plainSizeOf(key, stored.size);
    const headerBytes = await readAll(await this.inner.get(key, { start: 0, end: HEADER_SIZE - 1 }, options));
    if (headerBytes.length < HEADER_SIZE) throw new IntegrityError(key, 'object is shorter than its encryption header');
    const ctx = await this.context(key, headerBytes);
    // Callers ask for ranges within the size they recorded: an end past the object's is a
    // truncated object, answered before anything is sent.
    if (range.end !== undefined && range.end > total - 1) {
      throw new IntegrityError(key, `object holds ${total} bytes, the range read ends at ${range.end}`);
    }
    const end = Math.min(range.end ?? total - 1, total - 1);
    // A range that reaches the end (or starts past it) reads the last segment, which must open as
    // the final one: an object cut at a segment boundary has a valid size but no final segment.
    // Only then is an empty answer true; a truncated object is an IntegrityError, whatever the range.
    const reachesEnd = range.end === undefined || range.end >= total - 1;
    const first = Math.floor(Math.min(range.start, reachesEnd ? total : range.start) / SEGMENT_SIZE);
    const clampedFirst = Math.min(first, segmentCount(total) - 1);
    const last = reachesEnd ? segmentCount(total) - 1 : Math.floor(end / SEGMENT_SIZE);
    const from = HEADER_SIZE + clampedFirst * SEALED_SEGMENT;
    const to = Math.min(HEADER_SIZE + (last + 1) * SEALED_SEGMENT, stored.size) - 1;
    const sealed = await this.inner.get(key, { start: from, end: to }, options);
    const plain = this.openSegments(key, ctx, sealed, clampedFirst, last === segmentCount(total) - 1, to - from + 1);
    const length = Math.max(0, end - range.start + 1);
    return Readable.from(slice(plain, range.start - clampedFirst * SEGMENT_SIZE, length), { objectMode: false });
  }

  async stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    // Mixed mode: the format first (a sealed object stays sealed, so its size is then exact).
    const sealed = this.mixed.acceptPlaintext ? await this.isSealed(key, options) : true;
    const info = await this.inner.stat(key, options);
    if (info && !sealed) return info;
    return info && { ...info, size: this.plainSizeOf(key, info.size) };
  }

  /** Whether an object starts with the envelope header (mixed mode only: one small read). */
  private async isSealed(key: string, options?: OpOptions): Promise<boolean> {
    try {
      const head = await readAll(await this.inner.get(key, { start: 0, end: MAGIC.length - 1 }, options));
      return head.equals(MAGIC);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return true; // the sealed path reports it
      throw err;
    }
  }

  delete(key: string, options?: OpOptions): Promise<void> {
    return this.inner.delete(key, options);
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    for await (const info of this.inner.list(prefix, options)) {
      if (info.key.startsWith(DATA_KEYS_PREFIX) || info.key.startsWith(META_PREFIX)) continue; // the store's own objects
      // Mixed mode: a size that cannot be sealed is a plaintext object's (others are estimates).
      yield { ...info, size: plainSize(info.size - HEADER_SIZE) ?? (this.mixed.acceptPlaintext ? info.size : 0) };
    }
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }

  private plainSizeOf(key: string, storedSize: number): number {
    const size = plainSize(storedSize - HEADER_SIZE);
    if (size === undefined) throw new IntegrityError(key, `stored size ${storedSize} is not a valid encrypted size`);
    return size;
  }

  private async context(key: string, headerBytes: Buffer): Promise<SegmentContext> {
    try {
      const header = parseHeader(headerBytes);
      return segmentContext(await this.dataKeys.get(header.dataKeyId), header, key);
    } catch (err) {
      if (err instanceof EnvelopeError) throw new IntegrityError(key, err.message);
      throw err;
    }
  }

  /** Whole object: header from the first bytes, then every segment up to the final one. */
  private async *openAll(key: string, stream: Readable): AsyncGenerator<Buffer> {
    const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head = Buffer.alloc(0);
    let ctx: SegmentContext;
    try {
      while (head.length < HEADER_SIZE) {
        const next = await chunks.next();
        if (next.done) throw new IntegrityError(key, 'object is shorter than its encryption header');
        head = Buffer.concat([head, next.value]);
      }
      ctx = await this.context(key, head);
    } catch (err) {
      stream.destroy(); // release the file handle or socket: nobody else will read this stream
      throw err;
    }
    const rest = Readable.from(
      (async function* () {
        yield head.subarray(HEADER_SIZE);
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
      })(),
      { objectMode: false },
    );
    yield* this.openSegments(key, ctx, rest, 0, true, undefined);
  }

  /** Opens consecutive sealed segments; the last one is opened as final when `lastIsFinal`. */
  private async *openSegments(
    key: string,
    ctx: SegmentContext,
    sealed: Readable,
    first: number,
    lastIsFinal: boolean,
    /** Sealed bytes the stream must deliver: fewer is a truncated object, never a short answer. */
    expected: number | undefined,
  ): AsyncGenerator<Buffer> {
    let chunks: Buffer[] = [];
    let pending = 0;
    let received = 0;
    let index = first;
    try {
      for await (const chunk of sealed) {
        chunks.push(chunk as Buffer);
        pending += (chunk as Buffer).length;
        received += (chunk as Buffer).length;
        // Keep at least one segment back: only the end of the stream says which one is final.
        while (pending > SEALED_SEGMENT) {
          const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, pending);
          yield openSegment(ctx, index++, false, all.subarray(0, SEALED_SEGMENT));
          chunks = [all.subarray(SEALED_SEGMENT)];
          pending -= SEALED_SEGMENT;
        }
      }
      if (expected !== undefined && received < expected) {
        throw new IntegrityError(key, `ciphertext ends early: ${received} of ${expected} bytes read`);
      }
      const last = Buffer.concat(chunks, pending);
      yield openSegment(ctx, index, lastIsFinal, last);
    } catch (err) {
      if (err instanceof SegmentAuthError) throw new IntegrityError(key, `decryption failed: ${err.message}`);
      throw err;
    }
  }
}

/** Skips `skip` bytes, then passes `length` bytes. */
async function* slice(source: AsyncIterable<Buffer>, skip: number, length: number): AsyncGenerator<Buffer> {
  let toSkip = skip;
  let left = length;
  for await (const chunk of source) {
    if (left <= 0) break;
    let part: Buffer = chunk;
    if (toSkip > 0) {
      const cut = Math.min(toSkip, part.length);
      part = part.subarray(cut);
      toSkip -= cut;
    }
    if (part.length === 0) continue;
    const take = part.subarray(0, left);
    left -= take.length;
    yield take;
  }
}
