// Segmented AES-256-GCM (pure functions and transforms; no storage). An object's content is cut
// into fixed-size segments, each sealed with its own nonce (prefix || segment index) and with
// associated data that binds the object's header, its storage key, the segment index and a
// final-segment flag. So reordering, truncation, extension, splicing between objects and bit
// flips all fail authentication, and a range read decrypts only the segments it needs.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export const SEGMENT_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
const SEALED_SEGMENT = SEGMENT_SIZE + TAG_SIZE;

export interface SegmentContext {
  key: Buffer; // 32-byte per-object key
  noncePrefix: Buffer; // 8 bytes
  /** Associated data common to every segment: the header and the storage key. */
  aad: Buffer;
}

export class SegmentAuthError extends Error {
  override readonly name = 'SegmentAuthError';
}

function nonce(ctx: SegmentContext, index: number): Buffer {
  const n = Buffer.alloc(12);
  ctx.noncePrefix.copy(n, 0, 0, 8);
  n.writeUInt32BE(index, 8);
  return n;
}

function segmentAad(ctx: SegmentContext, index: number, final: boolean): Buffer {
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail[4] = final ? 1 : 0;
  return Buffer.concat([ctx.aad, tail]);
}

export function sealSegment(ctx: SegmentContext, index: number, final: boolean, plain: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', ctx.key, nonce(ctx, index));
  cipher.setAAD(segmentAad(ctx, index, final));
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

export function openSegment(ctx: SegmentContext, index: number, final: boolean, sealed: Buffer): Buffer {
  if (sealed.length < TAG_SIZE) throw new SegmentAuthError(`segment ${index} is truncated`);
  const decipher = createDecipheriv('aes-256-gcm', ctx.key, nonce(ctx, index));
  decipher.setAAD(segmentAad(ctx, index, final));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE)), decipher.final()]);
  } catch {
    throw new SegmentAuthError(`segment ${index}${final ? ' (final)' : ''} failed authentication`);
  }
}

/** Sealed size of `plain` bytes: every object has at least one (final) segment. */
export function sealedSize(plain: number): number {
  const segments = Math.max(1, Math.ceil(plain / SEGMENT_SIZE));
  return plain + segments * TAG_SIZE;
}

/** Inverse of sealedSize; undefined when no plaintext size seals to `sealed`. */
export function plainSize(sealed: number): number | undefined {
  const full = Math.floor(sealed / SEALED_SEGMENT);
  const rest = sealed % SEALED_SEGMENT;
  if (rest === 0) return full > 0 ? full * SEGMENT_SIZE : undefined;
  return rest >= TAG_SIZE ? full * SEGMENT_SIZE + rest - TAG_SIZE : undefined;
}

export function segmentCount(plain: number): number {
  return Math.max(1, Math.ceil(plain / SEGMENT_SIZE));
}

/**
 * Collects a stream into fixed-size blocks, holding the last one back until the stream ends, so
 * every block is emitted knowing whether it is the final one.
 */
abstract class BlockTransform extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  protected index: number;

  constructor(
    private readonly blockSize: number,
    firstIndex: number,
  ) {
    super();
    this.index = firstIndex;
  }

  protected abstract block(data: Buffer, final: boolean): Buffer;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    try {
      // Strictly more than one block: the last full block might be the final one.
      while (this.pendingBytes > this.blockSize) {
        const all = Buffer.concat(this.pending, this.pendingBytes);
        this.push(this.block(all.subarray(0, this.blockSize), false));
        this.index++;
        const rest = all.subarray(this.blockSize);
        this.pending = [rest];
        this.pendingBytes = rest.length;
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.push(this.block(Buffer.concat(this.pending, this.pendingBytes), true));
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

export class SealStream extends BlockTransform {
  constructor(private readonly ctx: SegmentContext) {
    super(SEGMENT_SIZE, 0);
  }
  protected block(data: Buffer, final: boolean): Buffer {
    return sealSegment(this.ctx, this.index, final, data);
  }
}

/**
 * Opens sealed segments starting at `firstIndex`. `finalAtEnd` says whether the last segment of
 * this stream is the object's final segment (false for a range that stops before the end).
 */
export class OpenStream extends BlockTransform {
  constructor(
    private readonly ctx: SegmentContext,
    firstIndex: number,
    private readonly finalAtEnd: boolean,
  ) {
    super(SEALED_SEGMENT, firstIndex);
  }
  protected block(data: Buffer, final: boolean): Buffer {
    return openSegment(this.ctx, this.index, final && this.finalAtEnd, data);
  }
}
