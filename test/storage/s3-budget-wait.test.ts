// Issue 10, item 10: an upload waiting its turn for the S3 memory budget is not a stalled store.
// With a budget of one part and more concurrent uploads than fit, the uploads behind the first
// waited longer than the store's idle deadline (storage.deadlines.idle) for a part buffer, and that
// wait counted as the store taking nothing: they failed with 503 UNAVAILABLE although the store
// answered everything it was given. The driver now takes its first buffer before reading the body
// and tells the deadline decorator while it waits for memory; a hung store still fails fast
// (test/scale/swift-fault.test.ts, test/scale/store-hang.test.ts).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptedStore } from '../../src/storage/encrypted.js';
import { S3Store } from '../../src/storage/s3.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions, testKeyring } from '../helpers/stores.js';

const MiB = 1024 * 1024;
const UPLOADS = 6;
const SIZE = 6 * MiB; // two parts of 5 MiB: each upload holds the only part buffer while it sends
const PIECE = 512 * 1024;
const PACE_MS = 100; // a slow client: 6 MiB take ~1.2 s, longer than the 1 s idle deadline below

/** One blob by POST then a monolithic PUT, its body sent in paced pieces; the PUT's status. */
async function slowPush(base: string, repo: string, blob: Buffer, digest: string): Promise<number> {
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  return new Promise<number>((resolve, reject) => {
    const req = http.request(location, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    void (async () => {
      for (let i = 0; i < blob.length; i += PIECE) {
        if (req.destroyed) return;
        if (!req.write(blob.subarray(i, i + PIECE))) await new Promise((r) => req.once('drain', r));
        await sleep(PACE_MS);
      }
      req.end();
    })();
  });
}

describe.each([
  { name: 's3 on Swift', encrypted: false },
  { name: 'encrypted(s3 on Swift)', encrypted: true },
])('uploads waiting for the S3 memory budget on $name', ({ encrypted }) => {
  const options = { ...swiftOptions(), partSize: 5 * MiB, concurrency: 2, memoryBudget: 5 * MiB };
  let s3: S3Store;
  let registry: TestRegistry;

  beforeAll(async () => {
    s3 = new S3Store(options);
    await s3.check();
    const store = encrypted ? new EncryptedStore(s3, testKeyring()) : s3;
    await store.check();
    registry = await startTestRegistry({ store, env: { DRREG_STORAGE_DEADLINES_IDLE: '1s' } });
  });
  afterAll(async () => {
    await registry?.stop();
    await removeBucket(options);
  });

  it('all complete although each waits longer than the idle deadline for its part buffer', async () => {
    const blobs = Array.from({ length: UPLOADS }, () => {
      const bytes = randomBytes(SIZE);
      return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
    });
    let mostWaiting = 0;
    const watch = setInterval(() => (mostWaiting = Math.max(mostWaiting, s3.budget.queued)), 5);
    const started = Date.now();
    let statuses: number[];
    try {
      statuses = await Promise.all(blobs.map((b, i) => slowPush(registry.url, `wait/u${i}`, b.bytes, b.digest)));
    } finally {
      clearInterval(watch);
    }
    expect(statuses).toEqual(blobs.map(() => 201));
    // The budget was the limit: uploads queued for the one buffer, the last for more than twice the idle deadline.
    expect(mostWaiting).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeGreaterThan(2 * 1000);
    expect(s3.budget.highWater).toBeLessThanOrEqual(options.memoryBudget);
    expect(s3.budget.inUse).toBe(0);
    for (const [i, b] of blobs.entries()) {
      const res = await fetch(`${registry.url}/v2/wait/u${i}/blobs/${b.digest}`);
      expect(res.status).toBe(200);
      expect(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')).toBe(b.digest.slice('sha256:'.length));
    }
  }, 120_000);
});
