// storage.s3.redirect: whole-blob GETs go straight to the store through a presigned URL.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { pushBlob, sha256 } from './client.js';

describe('blob redirects to presigned store URLs', () => {
  const s3 = swiftOptions();
  let registry: TestRegistry;

  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_STORAGE_DRIVER: 's3',
        DRREG_STORAGE_S3_ENDPOINT: s3.endpoint,
        DRREG_STORAGE_S3_BUCKET: s3.bucket,
        DRREG_STORAGE_S3_ACCESSKEY: s3.accessKey,
        DRREG_STORAGE_S3_SECRETKEY: s3.secretKey,
        DRREG_STORAGE_S3_REDIRECT: 'true',
      },
    });
  });
  afterAll(async () => {
    await registry?.stop();
    await removeBucket(s3);
  });

  it('sends a whole-blob GET to the store, serves ranges and HEAD itself', async () => {
    const blob = randomBytes(100_000);
    const digest = await pushBlob(registry.url, 'redir/app', blob);
    const r = await fetch(`${registry.url}/v2/redir/app/blobs/${digest}`, { redirect: 'manual' });
    expect(r.status).toBe(307);
    const location = r.headers.get('location')!;
    expect(location.startsWith(s3.endpoint)).toBe(true);
    const direct = Buffer.from(await (await fetch(location)).arrayBuffer());
    expect(sha256(direct)).toBe(digest);

    const range = await fetch(`${registry.url}/v2/redir/app/blobs/${digest}`, { headers: { Range: 'bytes=0-9' }, redirect: 'manual' });
    expect(range.status).toBe(206);
    expect((await fetch(`${registry.url}/v2/redir/app/blobs/${digest}`, { method: 'HEAD', redirect: 'manual' })).status).toBe(200);
  });

  it('serves a blob uploaded in several chunks itself', async () => {
    const whole = randomBytes(20_000);
    const start = await fetch(`${registry.url}/v2/redir/app/blobs/uploads/`, { method: 'POST' });
    let location = start.headers.get('location')!;
    for (const [from, to] of [
      [0, 9_999],
      [10_000, 19_999],
    ] as const) {
      const r = await fetch(`${registry.url}${location}`, { method: 'PATCH', body: whole.subarray(from, to + 1), headers: { 'Content-Range': `${from}-${to}` } });
      location = r.headers.get('location')!;
    }
    expect((await fetch(`${registry.url}${location}?digest=${sha256(whole)}`, { method: 'PUT' })).status).toBe(201);
    const r = await fetch(`${registry.url}/v2/redir/app/blobs/${sha256(whole)}`, { redirect: 'manual' });
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(whole)).toBe(true);
  });
});
