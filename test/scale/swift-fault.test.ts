// Fault test: the object store goes away in the middle of a push. The client gets an error, the
// registry stays up and answers 503, nothing partial becomes visible, and once the store is back
// the same push succeeds without restarting the registry. Runs on a Swift instance of its own.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { swiftInstance } from '../services/swift.js';

const swift = swiftInstance('/tmp/dr-registry-swift-fault', { s3: 8091, object: 6210, container: 6211, account: 6212, memcached: 11213 });
const MiB = 1024 * 1024;

/** PATCHes a body fed by the test: resolves with the status, or the transport error. */
function streamingPatch(url: string, body: Readable): Promise<number | Error> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', (err) => resolve(err));
    body.pipe(req);
  });
}

describe('object store failure during a push', () => {
  let registry: TestRegistry;
  const options = swiftOptions();

  beforeAll(async () => {
    await swift.start();
    const { bucket, accessKey, secretKey } = options;
    registry = await startTestRegistry({
      env: {
        DRREG_STORAGE_DRIVER: 's3',
        DRREG_STORAGE_S3_ENDPOINT: swift.endpoint,
        DRREG_STORAGE_S3_BUCKET: bucket,
        DRREG_STORAGE_S3_ACCESSKEY: accessKey,
        DRREG_STORAGE_S3_SECRETKEY: secretKey,
        DRREG_STORAGE_S3_PARTSIZE: '5MiB',
      },
    });
  }, 120_000);

  afterAll(async () => {
    await registry?.stop();
    if (!(await swift.healthy())) await swift.start();
    await removeBucket({ ...options, endpoint: swift.endpoint });
    await swift.stop();
  }, 120_000);

  it('fails the push with an error, answers 503 meanwhile, and recovers by itself', async () => {
    const blob = randomBytes(24 * MiB);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const start = await fetch(`${registry.url}/v2/fault/app/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, registry.url).toString();

    // Send 12 MiB (two parts reach the store), stop Swift, then send the rest.
    const body = new Readable({ read() {} });
    const patch = streamingPatch(location, body);
    body.push(blob.subarray(0, 12 * MiB));
    await new Promise((r) => setTimeout(r, 500));
    await swift.stop();
    body.push(blob.subarray(12 * MiB));
    body.push(null);
    const outcome = await patch;
    if (typeof outcome === 'number') expect(outcome).toBe(503);
    else expect(outcome).toBeInstanceOf(Error); // the server may close the connection mid-body

    // The registry is up and says the store is unavailable, in OCI error form.
    expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
    const during = await fetch(`${registry.url}/v2/fault/app/blobs/${digest}`);
    expect(during.status).toBe(503);
    expect(during.headers.get('retry-after')).toBeTruthy();
    expect(((await during.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNAVAILABLE');

    await swift.start();
    // Nothing partial is visible: the blob is unknown, and the failed chunk did not advance the upload.
    expect((await fetch(`${registry.url}/v2/fault/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const status = await fetch(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');

    // The same push, retried, succeeds with no registry restart.
    const retry = await fetch(`${registry.url}/v2/fault/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob });
    expect(retry.status).toBe(201);
    const pulled = Buffer.from(await (await fetch(`${registry.url}/v2/fault/app/blobs/${digest}`)).arrayBuffer());
    expect(pulled.equals(blob)).toBe(true);
  }, 180_000);
});
