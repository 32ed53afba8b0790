// A hung object store (issue 10, item 3): Swift's proxy stopped with SIGSTOP accepts connections
// and never answers. Manifest GETs and blob HEADs must get 503 UNAVAILABLE with Retry-After within
// 30 s (the store deadline, src/storage/deadline.ts), a burst of requests must not pile up, and
// once the proxy continues, service resumes with no restart. Uploads waiting for the S3 memory
// budget behind uploads stuck on the hung store get their 503 as fast. Runs on a Swift instance of
// its own.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cli.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { OCI_MANIFEST, pushImage, putManifest } from '../http/client.js';
import { S3Store } from '../../src/storage/s3.js';
import { swiftInstance } from '../services/swift.js';

const BASE = '/tmp/dr-registry-swift-hang';
const swift = swiftInstance(BASE, { s3: 8097, object: 6277, container: 6278, account: 6279, memcached: 11297 });
/** The bound; the default deadline answers in about 10 s. */
const ANSWER_WITHIN_MS = 30_000;
const MiB = 1024 * 1024;

/** The proxy's process group (start.sh runs each server in a session of its own). */
async function proxyGroup(): Promise<number> {
  return Number((await readFile(`${BASE}/run/proxy.pid`, 'utf8')).trim());
}

/** An upload whose one PATCH body the test feeds; `finish` sends the rest, then the PUT. */
async function startUpload(base: string, repo: string, bytes: Buffer, sendFirst: number) {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const signal = AbortSignal.timeout(ANSWER_WITHIN_MS + 15_000);
  const post = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', signal });
  if (post.status !== 202) return { finish: async () => ({ status: post.status, ms: 0 }) };
  const body = new Readable({ read() {} });
  const patched = new Promise<{ status: number; location?: string }>((resolve) => {
    const req = http.request(new URL(post.headers.get('location')!, base), { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' }, signal }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location }));
    });
    req.on('error', () => resolve({ status: 0 })); // the server may close the connection mid-body
    body.pipe(req);
  });
  body.push(bytes.subarray(0, sendFirst));
  return {
    /** Sends the rest of the body; resolves with the PATCH's status if it failed, else the PUT's. */
    async finish(): Promise<{ status: number; ms: number }> {
      const started = Date.now();
      body.push(bytes.subarray(sendFirst));
      body.push(null);
      const patch = await patched;
      if (patch.status !== 202) return { status: patch.status, ms: Date.now() - started };
      const put = new URL(patch.location!, base);
      put.searchParams.set('digest', digest);
      const res = await fetch(put, { method: 'PUT', signal });
      return { status: res.status, ms: Date.now() - started };
    },
  };
}

async function timedFetch(url: string, init: RequestInit = {}) {
  const started = Date.now();
  // The fetch gives up well after the bound, so a hang fails the assertions rather than the run.
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(ANSWER_WITHIN_MS + 15_000) });
  await res.arrayBuffer();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), ms: Date.now() - started };
}

describe('a hung object store', () => {
  let registry: TestRegistry;
  let stopped = false;
  const options = swiftOptions();

  beforeAll(async () => {
    await swift.start();
    registry = await startTestRegistry({
      env: {
        DRREG_STORAGE_DRIVER: 's3',
        DRREG_STORAGE_S3_ENDPOINT: swift.endpoint,
        DRREG_STORAGE_S3_BUCKET: options.bucket,
        DRREG_STORAGE_S3_ACCESSKEY: options.accessKey,
        DRREG_STORAGE_S3_SECRETKEY: options.secretKey,
      },
    });
  }, 120_000);

  afterAll(async () => {
    if (stopped) process.kill(-(await proxyGroup()), 'SIGCONT');
    await registry?.stop();
    await removeBucket({ ...options, endpoint: swift.endpoint }).catch(() => undefined);
    await swift.stop();
  }, 120_000);

  it('answers 503 with Retry-After within 30 s while the proxy is stopped, and resumes after', async () => {
    const manifest = await pushImage(registry.url, 'hang/app', 'hang');
    const { res, digest } = await putManifest(registry.url, 'hang/app', 'v1', manifest, OCI_MANIFEST);
    expect(res.status).toBe(201);
    const layer = manifest.layers[0]!.digest;
    const manifestUrl = `${registry.url}/v2/hang/app/manifests/${digest}`;
    const blobUrl = `${registry.url}/v2/hang/app/blobs/${layer}`;

    process.kill(-(await proxyGroup()), 'SIGSTOP');
    stopped = true;
    // A manifest GET and a blob HEAD (both read the store, no cache), and a burst beside them.
    const answers = await Promise.all([
      timedFetch(manifestUrl, { headers: { Accept: OCI_MANIFEST } }),
      timedFetch(blobUrl, { method: 'HEAD' }),
      ...Array.from({ length: 40 }, (_, i) => timedFetch(i % 2 ? blobUrl : manifestUrl, { method: i % 2 ? 'HEAD' : 'GET' })),
    ]);
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.retryAfter).toBeTruthy();
      expect(a.ms).toBeLessThan(ANSWER_WITHIN_MS);
    }
    // The breaker is open now: a request while the store is known down fails at once.
    const fast = await timedFetch(blobUrl, { method: 'HEAD' });
    expect(fast.status).toBe(503);
    expect(fast.ms).toBeLessThan(1000);

    process.kill(-(await proxyGroup()), 'SIGCONT');
    stopped = false;
    // Service resumes by itself: wait (bounded) for the first good answer.
    let head = 0;
    for (let i = 0; i < 60 && head !== 200; i++) {
      head = (await timedFetch(blobUrl, { method: 'HEAD' })).status;
      if (head !== 200) await new Promise((r) => setTimeout(r, 500));
    }
    expect(head).toBe(200);
    const got = await fetch(manifestUrl, { headers: { Accept: OCI_MANIFEST } });
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).toString()).toBe(JSON.stringify(manifest));
  }, 180_000);

  it('answers uploads waiting for the memory budget with 503 once the breaker opens, and stores them after', async () => {
    // Room for one part buffer: the first upload takes it, the others queue for it.
    const s3 = new S3Store({ ...options, endpoint: swift.endpoint, partSize: 5 * MiB, concurrency: 2, memoryBudget: 5 * MiB });
    await s3.check();
    const logLines: Array<Record<string, unknown>> = [];
    const small = await startTestRegistry({ store: s3, logLines, env: { DRREG_STORAGE_DEADLINES_IDLE: '2s', DRREG_STORAGE_DEADLINES_CALL: '2s' } });
    const QUEUED = 7;
    try {
      const blobs = Array.from({ length: QUEUED + 1 }, () => randomBytes(12 * MiB));
      // The first upload fills the buffer and sends its first part; the others wait for the buffer.
      const first = await startUpload(small.url, 'hang/up0', blobs[0]!, 6 * MiB);
      await waitFor(async () => (s3.budget.inUse > 0 ? true : undefined), 10_000, 'the first upload to take the buffer');
      const waiting = await Promise.all(blobs.slice(1).map((bytes, i) => startUpload(small.url, `hang/up${i + 1}`, bytes, bytes.length)));
      await waitFor(async () => (s3.budget.queued === QUEUED ? true : undefined), 10_000, 'the other uploads to queue for the buffer');

      process.kill(-(await proxyGroup()), 'SIGSTOP');
      stopped = true;
      const answers = await Promise.all([first, ...waiting].map((u) => u.finish()));
      for (const a of answers) {
        expect(a.status).toBe(503);
        expect(a.ms).toBeLessThan(ANSWER_WITHIN_MS);
      }
      expect(s3.budget.queued).toBe(0);
      // Three uploads in a row found the store stalled (the breaker's threshold); the breaker then
      // turned the rest away. Before, the first upload's hung part request held the buffer until
      // minio's 120 s socket timeout, and each waiting upload had to meet the stall in turn.
      const failures = logLines.filter((l) => l.msg === 'request failed').map((l) => String((l.err as { message?: string } | undefined)?.message));
      expect(failures.filter((m) => m.includes('did not answer')).length).toBeLessThanOrEqual(4);
      expect(failures.filter((m) => m.includes('not answering')).length).toBeGreaterThanOrEqual(QUEUED - 3);

      process.kill(-(await proxyGroup()), 'SIGCONT');
      stopped = false;
      // The budget came back: once the store answers, the same uploads are stored.
      await waitFor(async () => ((await startUpload(small.url, 'hang/probe', randomBytes(1024), 0).then((u) => u.finish())).status === 201 ? true : undefined), 60_000, 'the store to answer again');
      const again = await Promise.all(blobs.map((bytes, i) => startUpload(small.url, `hang/up${i}`, bytes, 0).then((u) => u.finish())));
      expect(again.map((a) => a.status)).toEqual(blobs.map(() => 201));
      expect(s3.budget.inUse).toBe(0);
    } finally {
      if (stopped) {
        process.kill(-(await proxyGroup()), 'SIGCONT');
        stopped = false;
      }
      await small.stop();
    }
  }, 180_000);
});
