// Bad input: every hostile request gets the right OCI error, the server stays up, and the store
// holds no partial blob afterwards (every blob index points at parts that hash to its digest).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { storeFactories } from '../helpers/stores.js';
import { OCI_MANIFEST, assertNoPartialBlobs, errorCode, pushBlob, pushImage, putManifest, raw, sha256, truncatedRequest, unreferencedParts } from './client.js';

describe.each(storeFactories())('hostile input on $name', ({ make }) => {
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;
  let url: string;

  beforeAll(async () => {
    const made = await make();
    cleanup = made.cleanup;
    registry = await startTestRegistry({ store: made.store });
    url = registry.url;
    await pushBlob(url, 'good/app', Buffer.from('a good blob'));
  });
  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  it.each([
    ['upper case', '/v2/Good/App/tags/list', 400, 'NAME_INVALID'],
    ['dot-dot segment', '/v2/good/../../etc/tags/list', 400, 'NAME_INVALID'],
    ['encoded dot-dot', '/v2/good/%2e%2e/%2e%2e/tags/list', 400, 'NAME_INVALID'],
    ['encoded slash', '/v2/good%2fapp/tags/list', 400, 'NAME_INVALID'],
    ['leading underscore', '/v2/_good/tags/list', 400, 'NAME_INVALID'],
    ['double slash', '/v2/good//app/tags/list', 400, 'NAME_INVALID'],
    ['300-character name', `/v2/${'a'.repeat(300)}/tags/list`, 400, 'NAME_INVALID'],
    ['digest with 63 hex', `/v2/good/app/blobs/sha256:${'a'.repeat(63)}`, 400, 'DIGEST_INVALID'],
    ['upper-case hex', `/v2/good/app/blobs/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['unknown algorithm', `/v2/good/app/blobs/md5:${'a'.repeat(32)}`, 400, 'DIGEST_INVALID'],
    ['traversal in a digest', '/v2/good/app/blobs/sha256:..%2f..%2fetc', 400, 'DIGEST_INVALID'],
    ['hostile tag', '/v2/good/app/manifests/..%2f..%2fx', 404, 'MANIFEST_UNKNOWN'],
    ['bogus upload id', '/v2/good/app/blobs/uploads/..%2f..%2fstate', 404, 'BLOB_UPLOAD_UNKNOWN'],
  ])('%s: %s -> %i %s', async (_name, path, status, code) => {
    const r = await raw(url, 'GET', path);
    expect(r.status).toBe(status);
    expect(errorCode(r.body)).toBe(code);
    expect(r.headers['content-type']).toMatch(/application\/json/);
  });

  it('answers HEAD errors with the status and no body', async () => {
    const r = await raw(url, 'HEAD', `/v2/good/app/blobs/${sha256('absent')}`);
    expect(r.status).toBe(404);
    expect(r.body).toBe('');
  });

  it.each([
    ['bytes=abc', 416],
    ['bytes=100-', 416],
    ['bytes=5-2', 416],
    ['bytes=-0', 416],
    ['bytes=0-1,3-4', 200],
    ['lines=0-1', 200],
  ])('Range %s -> %i', async (range, status) => {
    const r = await raw(url, 'GET', `/v2/good/app/blobs/${sha256('a good blob')}`, { Range: range });
    expect(r.status).toBe(status);
    if (status === 416) expect(r.headers['content-range']).toBe('bytes */11');
    else expect(r.body).toBe('a good blob');
  });

  it('refuses malformed Content-Range and pagination values', async () => {
    const start = await fetch(`${url}/v2/good/app/blobs/uploads/`, { method: 'POST' });
    const r = await raw(url, 'PATCH', start.headers.get('location')!, { 'Content-Range': 'zero-ten' }, Buffer.from('x'));
    expect(r.status).toBe(416);
    expect(errorCode(r.body)).toBe('RANGE_INVALID');
    const lengthMismatch = await raw(url, 'PATCH', start.headers.get('location')!, { 'Content-Range': '0-99' }, Buffer.from('short'));
    expect(lengthMismatch.status).toBe(416);
    for (const n of ['-1', '1.5', 'abc']) {
      expect(errorCode((await raw(url, 'GET', `/v2/good/app/tags/list?n=${n}`)).body)).toBe('PAGINATION_NUMBER_INVALID');
    }
  });

  it('keeps nothing of truncated bodies: monolithic, PATCH and final PUT', async () => {
    const blob = randomBytes(64 * 1024);
    const digest = sha256(blob);
    await truncatedRequest(url, 'POST', `/v2/good/trunc/blobs/uploads/?digest=${digest}`, blob.length, blob.subarray(0, 1000));
    const start = await fetch(`${url}/v2/good/trunc/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    await truncatedRequest(url, 'PATCH', location, blob.length, blob.subarray(0, 1000));
    await truncatedRequest(url, 'PUT', `${location}?digest=${digest}`, blob.length, blob.subarray(0, 1000));
    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(`${url}/v2/good/trunc/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const status = await fetch(`${url}${location}`);
    expect(status.headers.get('range')).toBe('0-0'); // the session survives, with nothing in it
    // A complete retry works.
    expect((await fetch(`${url}${location}?digest=${digest}`, { method: 'PUT', body: blob })).status).toBe(201);
  });

  it('stores nothing on a digest mismatch, and the upload is gone', async () => {
    const start = await fetch(`${url}/v2/good/mismatch/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const claimed = sha256('something else');
    const r = await fetch(`${url}${location}?digest=${claimed}`, { method: 'PUT', body: randomBytes(5000) });
    expect(r.status).toBe(400);
    expect(errorCode(await r.text())).toBe('DIGEST_INVALID');
    expect((await fetch(`${url}${location}`)).status).toBe(404);
    expect((await fetch(`${url}/v2/good/mismatch/blobs/${claimed}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('refuses oversized, malformed and inconsistent manifests and stays up', async () => {
    const image = await pushImage(url, 'good/m', 'm');
    const cases: Array<[string | Buffer, string, number, string]> = [
      [Buffer.alloc(4 * 1024 * 1024 + 1, 'x'), OCI_MANIFEST, 413, 'SIZE_INVALID'],
      ['{"schemaVersion": 2, "config": ', OCI_MANIFEST, 400, 'MANIFEST_INVALID'],
      ['[]', OCI_MANIFEST, 400, 'MANIFEST_INVALID'],
      [JSON.stringify({ ...image, schemaVersion: 3 }), OCI_MANIFEST, 400, 'MANIFEST_INVALID'],
      [JSON.stringify({ ...image, layers: [{ ...image.layers[0], size: 'ten' }] }), OCI_MANIFEST, 400, 'MANIFEST_INVALID'],
      [JSON.stringify({ ...image, layers: [{ ...image.layers[0], size: image.layers[0]!.size + 1 }] }), OCI_MANIFEST, 400, 'MANIFEST_INVALID'],
      [JSON.stringify(image), 'application/vnd.oci.image.index.v1+json', 400, 'MANIFEST_INVALID'],
    ];
    for (const [body, type, status, code] of cases) {
      const r = await putManifest(url, 'good/m', 'v1', body instanceof Buffer ? body.toString() : body, type);
      expect([r.res.status, r.json?.errors[0]?.code]).toEqual([status, code]);
    }
    expect((await fetch(`${url}/v2/`)).status).toBe(200);
    expect((await fetch(`${url}/v2/good/m/manifests/v1`)).status).toBe(404);
  });

  it('after all of it: the server is up and the store holds no partial blob', async () => {
    expect((await fetch(`${url}/v2/`)).status).toBe(200);
    expect(await assertNoPartialBlobs(registry.store)).toBeGreaterThan(0);
    expect(await unreferencedParts(registry.store)).toEqual([]);
  });
});
