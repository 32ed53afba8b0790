// Content-defined chunking: FastCDC (Xia et al., USENIX ATC 2016) with a 32-bit gear rolling hash
// and normalised chunking (a stricter mask before the average size, a looser one after it). Cut
// points depend only on the bytes, so an insertion moves the boundaries of the chunks around it
// and no others, and the same data chunks the same way on every host.
//
// With `h = (h << 1) + GEAR[byte]` bit k of h depends on the last k+1 bytes only, so the masks
// test the top bits: a cut depends on a window of the last 32 bytes.
import { createHash } from 'node:crypto';

export interface ChunkSizes {
  min: number;
  avg: number;
  max: number;
}

/** 512 KiB / 1 MiB / 8 MiB, as restic (docs/volumes.md has the measurements behind the choice). */
export const DEFAULT_SIZES: ChunkSizes = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 };

/** The gear table: 256 pseudo-random 32-bit words from sha256 of a fixed label (part of the format). */
export const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i += 8) {
    const block = createHash('sha256').update(`dr-registry gear v1 ${i / 8}`).digest();
    for (let j = 0; j < 8; j++) table[i + j] = block.readInt32BE(j * 4);
  }
  return table;
})();

function topBits(n: number): number {
  return n >= 32 ? -1 : (((1 << n) - 1) << (32 - n)) | 0;
}

export class Chunker {
  readonly sizes: ChunkSizes;
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(sizes: ChunkSizes = DEFAULT_SIZES) {
    if (!(sizes.min >= 64 && sizes.min <= sizes.avg && sizes.avg <= sizes.max)) throw new Error('chunk sizes must satisfy 64 <= min <= avg <= max');
    this.sizes = sizes;
    const bits = Math.round(Math.log2(sizes.avg));
    // Normalisation level 2: two bits harder before the average size, two bits easier after it.
    this.maskS = topBits(bits + 2);
    this.maskL = topBits(bits - 2);
  }

  /**
   * The length of the next chunk of `buf[start, end)`. `final` says no bytes follow `end`; if it is
   * false and no cut is found before `end`, returns 0 (give me more bytes, up to `max`).
   */
  cut(buf: Uint8Array, start: number, end: number, final: boolean): number {
    const { min, avg, max } = this.sizes;
    const available = end - start;
    if (available <= min) return final ? available : 0;
    const limit = Math.min(available, max);
    const normal = Math.min(avg, limit);
    // A window of zeros (a hole in a sparse file) needs no hashing: after 32 zero bytes the hash
    // is the fixed point ZERO_HASH, so the cut is where that value first matches a mask.
    if (isZero(buf, start + min - 32, start + limit)) {
      if (normal > min && (ZERO_HASH & this.maskS) === 0) return min + 1;
      if (normal < limit && (ZERO_HASH & this.maskL) === 0) return normal + 1;
      return limit === max || final ? limit : 0;
    }
    const gear = GEAR;
    let h = 0;
    // The hash only needs the 32 bytes before a candidate cut; start there, just before min.
    let i = start + min - 32;
    for (let j = i; j < start + min; j++) h = ((h << 1) + gear[buf[j]!]!) | 0;
    i = start + min;
    const normalEnd = start + normal;
    const maskS = this.maskS;
    for (; i < normalEnd; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskS) === 0) return i + 1 - start;
    }
    const limitEnd = start + limit;
    const maskL = this.maskL;
    for (; i < limitEnd; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskL) === 0) return i + 1 - start;
    }
    if (limit === max || final) return limit;
    return 0;
  }
}

/** True if every byte of `buf[start, end)` is zero (compared natively, 64 KiB at a time). */
const ZEROS = Buffer.alloc(64 * 1024);
export function isZero(buf: Uint8Array, start = 0, end = buf.length): boolean {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let o = start; o < end; o += ZEROS.length) {
    const n = Math.min(ZEROS.length, end - o);
    if (b.compare(ZEROS, 0, n, o, o + n) !== 0) return false;
  }
  return true;
}

/** The gear hash after 32 or more zero bytes, whatever came before. */
const ZERO_HASH = (() => {
  let h = 0;
  for (let i = 0; i < 32; i++) h = ((h << 1) + GEAR[0]!) | 0;
  return h;
})();
