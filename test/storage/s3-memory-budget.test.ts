// Issue 10, item 10: S3 uploads had no process-wide memory budget (50 concurrent 20 MiB uploads
// reached 1.1 GB RSS). Part buffers and read windows of every transfer now share one budget
// (storage.s3.memoryBudget): each transfer is guaranteed one buffer, the others wait, nobody
// deadlocks, and the bytes granted never exceed the budget, whatever the number of uploads.
// The RSS figure for 100 concurrent uploads through the HTTP API is in docs/benchmarks/transfer.md.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../src/storage/budget.js';
import { S3Store } from '../../src/storage/s3.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';

const MiB = 1024 * 1024;

/** A body of unknown size (as docker's chunked PATCH), in small chunks. */
function body(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += 256 * 1024) yield bytes.subarray(i, i + 256 * 1024);
    })(),
  );
}

describe('the S3 memory budget', () => {
  const options = { ...swiftOptions(), partSize: 5 * MiB, concurrency: 2, memoryBudget: 15 * MiB };
  let store: S3Store;

  beforeAll(async () => {
    store = new S3Store(options);
    await store.check();
  });
  afterAll(async () => {
    await store?.close();
    await removeBucket(options);
  });

  it('100 concurrent multipart uploads never hold more than the budget, and all complete', async () => {
    const sizes = Array.from({ length: 100 }, (_, i) => 5 * MiB + 1 + (i % 7) * 1000); // two parts each
    const sample = randomBytes(5 * MiB + 7000);
    let sawWaiting = 0;
    const watch = setInterval(() => (sawWaiting = Math.max(sawWaiting, store.budget.queued)), 5);
    try {
      const written = await Promise.all(sizes.map((size, i) => store.put(`budget/${i}`, body(sample.subarray(0, size)))));
      expect(written).toEqual(sizes);
    } finally {
      clearInterval(watch);
    }
    expect(store.budget.highWater).toBeLessThanOrEqual(options.memoryBudget);
    expect(sawWaiting).toBeGreaterThan(0); // the budget was the limit: uploads waited for it
    expect(store.budget.inUse).toBe(0); // everything granted came back
    // Every object is whole.
    const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    for (const i of [0, 37, 99]) {
      const chunks: Buffer[] = [];
      for await (const c of await store.get(`budget/${i}`)) chunks.push(c as Buffer);
      expect(hash(Buffer.concat(chunks))).toBe(hash(sample.subarray(0, sizes[i]!)));
    }
  }, 300_000);

  it('pooled part buffers are reused across concurrent uploads and each object keeps exactly its own bytes', async () => {
    // 3 part buffers for 30 uploads of distinct random data, 3 to 4 parts each: every buffer is
    // filled again and again by different uploads. A buffer handed on while minio still read it, or
    // a part filled into a buffer another upload still holds, would show as a wrong digest.
    const allocationsBefore = store.budget.allocations;
    const digests = new Map<string, string>();
    const randomBody = (key: string, size: number) =>
      Readable.from(
        (function* () {
          const hash = createHash('sha256');
          for (let sent = 0; sent < size; ) {
            const chunk = randomBytes(Math.min(200_000 + Math.floor(Math.random() * 200_000), size - sent));
            hash.update(chunk);
            sent += chunk.length;
            yield chunk;
          }
          digests.set(key, hash.digest('hex'));
        })(),
      );
    const uploads = Array.from({ length: 30 }, (_, i) => ({ key: `pool/${i}`, size: 10 * MiB + 1 + i * 173_000 }));
    const written = await Promise.all(uploads.map(({ key, size }) => store.put(key, randomBody(key, size))));
    expect(written).toEqual(uploads.map((u) => u.size));
    expect(store.budget.inUse).toBe(0);
    // The memory behind the budget was allocated once: at most budget / partSize buffers ever.
    expect(store.budget.allocations - allocationsBefore).toBeLessThanOrEqual(options.memoryBudget / options.partSize);
    expect(store.budget.pooled).toBeLessThanOrEqual(options.memoryBudget);
    for (const { key } of uploads) {
      const hash = createHash('sha256');
      for await (const c of await store.get(key)) hash.update(c as Buffer);
      expect(hash.digest('hex'), key).toBe(digests.get(key));
    }
  }, 300_000);

  it('large reads share it too: windows beyond the first only when there is room', async () => {
    const bytes = randomBytes(40 * MiB);
    await store.put('budget/large', bytes, { size: bytes.length });
    const before = store.budget.highWater;
    const reads = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const chunks: Buffer[] = [];
        for await (const c of await store.get('budget/large', { start: 0, end: bytes.length - 1 })) chunks.push(c as Buffer);
        return Buffer.concat(chunks);
      }),
    );
    for (const r of reads) expect(r.equals(bytes)).toBe(true);
    expect(Math.max(before, store.budget.highWater)).toBeLessThanOrEqual(options.memoryBudget);
    expect(store.budget.inUse).toBe(0);
  }, 300_000);
});

describe('MemoryBudget', () => {
  it('grants in arrival order, never past the limit, and a waiter can be aborted', async () => {
    const budget = new MemoryBudget(10);
    await budget.acquire(6);
    const order: string[] = [];
    const big = budget.acquire(6).then(() => order.push('big'));
    expect(budget.tryAcquire(3)).toBe(false); // someone is waiting: no overtaking
    const aborter = new AbortController();
    const gone = budget.acquire(1, aborter.signal).catch(() => order.push('aborted'));
    aborter.abort();
    await gone;
    budget.release(6);
    await big;
    expect(order).toEqual(['aborted', 'big']);
    expect(budget.inUse).toBe(6);
    expect(budget.highWater).toBe(6);
    budget.release(6);
    // A request larger than the whole budget is granted when nothing else is held.
    await budget.acquire(25);
    expect(budget.inUse).toBe(25);
    budget.release(25);
  });

  it('pools released buffers of its pool size, never holding more than the limit in all', async () => {
    const budget = new MemoryBudget(10, 4);
    const a = await budget.acquireBuffer(4);
    const b = budget.tryAcquireBuffer(4)!;
    expect(budget.allocations).toBe(2);
    budget.releaseBuffer(a);
    budget.releaseBuffer(b);
    expect(budget.pooled).toBe(8);
    expect(budget.inUse).toBe(0);
    // Handed out again, not allocated.
    const c = await budget.acquireBuffer(4);
    expect(c === a || c === b).toBe(true);
    expect(budget.allocations).toBe(2);
    // Another size is not pooled.
    const odd = await budget.acquireBuffer(2);
    budget.releaseBuffer(odd);
    expect(budget.pooled).toBe(4);
    // A grant that needs the room drops pooled buffers: granted + pooled stay within the limit.
    await budget.acquire(6); // 4 (c) + 6 = 10: the pooled buffer goes
    expect(budget.pooled).toBe(0);
    expect(budget.inUse + budget.pooled).toBeLessThanOrEqual(10);
    budget.release(6);
    budget.releaseBuffer(c);
    expect(budget.pooled).toBe(4);
    expect(budget.inUse).toBe(0);
  });
});
