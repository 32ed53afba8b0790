import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Chunker, GEAR, isZero } from '../../src/volumes/chunker.js';

const sizes = { min: 2048, avg: 8192, max: 65536 };

/** All cut lengths of `data`, the whole buffer available at once. */
function cuts(chunker: Chunker, data: Buffer): number[] {
  const out: number[] = [];
  for (let pos = 0; pos < data.length; ) {
    const n = chunker.cut(data, pos, data.length, true);
    out.push(n);
    pos += n;
  }
  return out;
}

/** The same algorithm without the zero-window shortcut. */
function slowCut(data: Buffer, start: number, end: number, maskS: number, maskL: number): number {
  const avail = end - start;
  if (avail <= sizes.min) return avail;
  const limit = Math.min(avail, sizes.max);
  const normal = Math.min(sizes.avg, limit);
  let h = 0;
  for (let i = 0; i < limit; i++) {
    h = ((h << 1) + GEAR[data[start + i]!]!) | 0;
    if (i < sizes.min) continue;
    if ((h & (i < normal ? maskS : maskL)) === 0) return i + 1;
  }
  return limit;
}

describe('chunker', () => {
  it('cuts by content: the same bytes after an insertion give the same chunks', () => {
    const chunker = new Chunker(sizes);
    const data = randomBytes(1024 * 1024);
    const a = cuts(chunker, data);
    expect(a.reduce((x, y) => x + y, 0)).toBe(data.length);
    for (const n of a.slice(0, -1)) expect(n).toBeGreaterThanOrEqual(sizes.min);
    for (const n of a) expect(n).toBeLessThanOrEqual(sizes.max);
    const avg = data.length / a.length;
    expect(avg).toBeGreaterThan(sizes.avg * 0.6);
    expect(avg).toBeLessThan(sizes.avg * 2);
    // Insert 100 bytes near the start: all but the first chunk or two are unchanged.
    const edited = Buffer.concat([data.subarray(0, 5000), randomBytes(100), data.subarray(5000)]);
    const b = cuts(chunker, edited);
    const tail = (xs: number[]) => xs.slice(-Math.floor(xs.length * 0.8)).join(',');
    expect(tail(b)).toBe(tail(a));
  });

  it('the zero-window shortcut cuts where hashing would', () => {
    const chunker = new Chunker(sizes);
    const bits = Math.round(Math.log2(sizes.avg));
    const top = (n: number) => (((1 << n) - 1) << (32 - n)) | 0;
    const zeros = Buffer.alloc(300_000);
    zeros[100_000] = 7; // data in the middle of a hole
    const mixed = Buffer.concat([randomBytes(10_000), zeros, randomBytes(5000)]);
    for (const data of [zeros, mixed]) {
      const fast = cuts(chunker, data);
      const slow: number[] = [];
      for (let pos = 0; pos < data.length; ) {
        const n = slowCut(data, pos, data.length, top(bits + 2), top(bits - 2));
        slow.push(n);
        pos += n;
      }
      expect(fast).toEqual(slow);
    }
    expect(isZero(Buffer.alloc(200_000))).toBe(true);
    expect(isZero(Buffer.concat([Buffer.alloc(150_000), Buffer.from([1])]))).toBe(false);
  });
});
