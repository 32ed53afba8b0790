// Review of the S3 driver's per-call request binding (callSignal in src/storage/s3.ts): every
// minio request listens to its call's AbortSignal. A long-lived signal (a job's, a replica's)
// passed to many calls must not keep a listener per request, and an abort of one call must not
// reach another call's requests.
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/storage/s3.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';

const MiB = 1024 * 1024;

describe('S3 requests bound to their call signal', () => {
  const options = swiftOptions();
  let s3: S3Store;

  beforeAll(async () => {
    s3 = new S3Store(options);
    await s3.check();
  });
  afterAll(async () => {
    await s3?.close?.();
    await removeBucket(options);
  });

  it('leave no abort listener on a long-lived signal', async () => {
    const job = new AbortController();
    const signal = job.signal;
    const small = randomBytes(1000);
    const large = randomBytes(6 * MiB); // multipart: two parts
    for (let i = 0; i < 10; i++) {
      await s3.put(`k/${i}`, small, { signal });
      await s3.put(`m/${i}`, Buffer.from(large), { signal });
      expect((await s3.stat(`k/${i}`, { signal }))?.size).toBe(1000);
      expect(await s3.stat(`missing/${i}`, { signal })).toBeUndefined();
      const whole = await s3.get(`k/${i}`, undefined, { signal });
      const chunks: Buffer[] = [];
      for await (const c of whole) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(small)).toBe(true);
      // A read the client gives up after its first bytes.
      const cut = await s3.get(`m/${i}`, undefined, { signal });
      await new Promise<void>((resolve) => {
        cut.once('data', () => {
          cut.destroy();
          resolve();
        });
      });
      await new Promise((resolve) => (cut.closed ? resolve(undefined) : cut.once('close', resolve)));
      await expect(s3.get(`missing/${i}`, undefined, { signal })).rejects.toThrow();
      for await (const _ of s3.list('k/', { signal })) void _;
      await s3.delete(`k/${i}`, { signal });
    }
    // Requests close a tick after their answer ends.
    await expect.poll(() => getEventListeners(signal, 'abort').length, { timeout: 5000 }).toBe(0);
  }, 120_000);

  it("one call's abort does not cut another call's requests", async () => {
    const bytes = randomBytes(12 * MiB);
    const gone = new AbortController();
    const kept = new AbortController();
    const a = s3.put('race/a', Buffer.from(bytes), { signal: gone.signal });
    const b = s3.put('race/b', Buffer.from(bytes), { signal: kept.signal });
    gone.abort(new Error('client went away'));
    await expect(a).rejects.toThrow();
    expect(await b).toBe(bytes.length);
    const read = await s3.get('race/b');
    const chunks: Buffer[] = [];
    for await (const c of read) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  }, 60_000);

  it('uploads aborted mid-part do not corrupt the uploads that reuse the pooled part buffers', async () => {
    const small = new S3Store({ ...options, partSize: 5 * MiB, concurrency: 2, memoryBudget: 15 * MiB });
    try {
      for (let round = 0; round < 6; round++) {
        const blobs = [randomBytes(17 * MiB), randomBytes(11 * MiB), randomBytes(16 * MiB)];
        const gone = new AbortController();
        const aborted = small.put(`abort/${round}`, Readable.from(chunked(randomBytes(20 * MiB))), { signal: gone.signal });
        const kept = blobs.map((b, i) => small.put(`kept/${round}/${i}`, Readable.from(chunked(b))));
        // Abort while parts are on their way (at a different point each round).
        await expect.poll(() => small.budget.inUse, { timeout: 10_000 }).toBeGreaterThan(round % 3 === 0 ? 0 : 5 * MiB);
        gone.abort(new Error('client went away'));
        await expect(aborted).rejects.toThrow();
        expect(await Promise.all(kept)).toEqual(blobs.map((b) => b.length));
        for (const [i, b] of blobs.entries()) {
          const read = await small.get(`kept/${round}/${i}`);
          const chunks: Buffer[] = [];
          for await (const c of read) chunks.push(c as Buffer);
          expect(Buffer.concat(chunks).equals(b)).toBe(true);
        }
        expect(await small.stat(`abort/${round}`)).toBeUndefined();
      }
      await expect.poll(() => small.budget.inUse, { timeout: 15_000 }).toBe(0);
    } finally {
      await small.close?.();
    }
  }, 120_000);
});

/** The bytes in pieces of 256 KiB, as a client sends them. */
function* chunked(bytes: Buffer): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i += 256 * 1024) yield bytes.subarray(i, i + 256 * 1024);
}
