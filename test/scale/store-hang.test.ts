// A hung object store (issue 10, item 3): Swift's proxy stopped with SIGSTOP accepts connections
// and never answers. Manifest GETs and blob HEADs must get 503 UNAVAILABLE with Retry-After within
// 30 s (the store deadline, src/storage/deadline.ts), a burst of requests must not pile up, and
// once the proxy continues, service resumes with no restart. Runs on a Swift instance of its own.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { OCI_MANIFEST, pushImage, putManifest } from '../http/client.js';
import { swiftInstance } from '../services/swift.js';

const BASE = '/tmp/dr-registry-swift-hang';
const swift = swiftInstance(BASE, { s3: 8097, object: 6277, container: 6278, account: 6279, memcached: 11297 });
/** The bound; the default deadline answers in about 10 s. */
const ANSWER_WITHIN_MS = 30_000;

/** The proxy's process group (start.sh runs each server in a session of its own). */
async function proxyGroup(): Promise<number> {
  return Number((await readFile(`${BASE}/run/proxy.pid`, 'utf8')).trim());
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
});
