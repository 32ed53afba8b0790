// Review of the single-write monolithic upload (Uploads.putWhole): sha512, empty bodies, a client
// that goes away mid-body, a store failing mid-commit and a retry, dedup against an existing blob,
// concurrent uploads of one blob, and the collector afterwards; on the filesystem, S3 on Swift and
// the encrypted store.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/storage/driver.js';
import { sweepUploadData } from '../../src/retention/upload-data.js';
import { assertNoPartialBlobs, errorCode, sha256, sha512, truncatedRequest, unreferencedParts } from '../http/client.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { encryptedFactory, filesystemFactory, s3Factory, type StoreFactory } from '../helpers/stores.js';
import { waitFor } from '../helpers/cli.js';

/** Fails the store operations `failing` matches (once each), on the real store underneath. */
function faulty(store: ObjectStore) {
  const wrapped = Object.create(store) as ObjectStore;
  const state = { failing: undefined as undefined | ((op: string, key: string) => boolean) };
  for (const op of ['get', 'put', 'stat', 'delete'] as const) {
    const inner = store[op].bind(store) as (...args: unknown[]) => Promise<unknown>;
    (wrapped as unknown as Record<string, unknown>)[op] = async (...args: unknown[]) => {
      const f = state.failing;
      if (f?.(op, String(args[0]))) {
        state.failing = undefined;
        throw Object.assign(new Error(`injected ${op} failure on ${String(args[0])}`), { code: 'EIO' });
      }
      return inner(...args);
    };
  }
  return { store: wrapped, state };
}

async function sessions(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const obj of store.list('uploads/')) out.push(obj.key);
  return out;
}

/** POST ?digest= with a chunked body (no Content-Length). */
function postChunked(base: string, repo: string, digest: string, chunks: Buffer[]): Promise<{ status: number; body: string; digest?: string }> {
  const u = new URL(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`);
  return new Promise((resolve, reject) => {
    const req = http.request(u, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/octet-stream' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, digest: res.headers['docker-content-digest'] as string | undefined }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe.each([filesystemFactory(), s3Factory(), encryptedFactory(filesystemFactory())] as StoreFactory[])('monolithic uploads under attack on $name', (factory) => {
  let registry: TestRegistry;
  let real: ObjectStore;
  let cleanup: () => Promise<void>;
  let fault: ReturnType<typeof faulty>;

  beforeAll(async () => {
    const made = await factory.make();
    real = made.store;
    cleanup = made.cleanup;
    fault = faulty(real);
    registry = await startTestRegistry({ store: fault.store });
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  const post = (repo: string, digest: string, body?: Buffer) =>
    fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  const pull = async (repo: string, digest: string) => {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`);
    return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
  };

  it('stores sha512 blobs and empty chunked bodies, refuses a digest of the wrong content', async () => {
    const bytes = randomBytes(200 * 1024);
    const res = await post('atk/a', sha512(bytes), bytes);
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(sha512(bytes));
    expect((await pull('atk/a', sha512(bytes))).bytes.equals(bytes)).toBe(true);
    // sha256 hex of the right content under a sha512 name: the wrong length, refused before the body.
    expect(errorCode(await (await post('atk/a', `sha512:${sha256(bytes).slice(7)}`, bytes)).text())).toBe('DIGEST_INVALID');
    const wrong = await post('atk/a', sha512(randomBytes(4)), bytes);
    expect(wrong.status).toBe(400);
    expect(errorCode(await wrong.text())).toBe('DIGEST_INVALID');

    const empty = Buffer.alloc(0);
    const chunkedEmpty = await postChunked(registry.url, 'atk/a', sha256(empty), []);
    expect(chunkedEmpty.status).toBe(201);
    const chunked = randomBytes(70_000);
    const viaChunks = await postChunked(registry.url, 'atk/a', sha256(chunked), [chunked.subarray(0, 1000), chunked.subarray(1000)]);
    expect(viaChunks.status).toBe(201);
    expect((await pull('atk/a', sha256(chunked))).bytes.equals(chunked)).toBe(true);
    expect(await sessions(real)).toEqual([]);
    expect(await unreferencedParts(real)).toEqual([]);
  }, 60_000);

  it('leaves nothing of a client that goes away mid-body', async () => {
    const bytes = randomBytes(256 * 1024);
    await truncatedRequest(registry.url, 'POST', `/v2/atk/b/blobs/uploads/?digest=${sha256(bytes)}`, bytes.length, bytes.subarray(0, 100 * 1024));
    await waitFor(async () => ((await sessions(real)).length === 0 && (await unreferencedParts(real)).length === 0 ? true : undefined), 10_000, 'session and part removed');
    let parts = 0;
    for await (const obj of real.list('data/')) if (obj) parts++;
    // Every data part left belongs to a blob index.
    expect(await unreferencedParts(real)).toEqual([]);
    expect(parts).toBeGreaterThan(0);
    expect((await pull('atk/b', sha256(bytes))).status).toBe(404);
  }, 30_000);

  it('leaves nothing of a chunked body (no Content-Length) cut mid-way', async () => {
    const bytes = randomBytes(300 * 1024);
    const u = new URL(`${registry.url}/v2/atk/b2/blobs/uploads/?digest=${sha256(bytes)}`);
    await new Promise<void>((resolve) => {
      const req = http.request(u, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(bytes.subarray(0, 128 * 1024), () => setTimeout(() => req.destroy(), 200));
    });
    await waitFor(async () => ((await sessions(real)).length === 0 && (await unreferencedParts(real)).length === 0 ? true : undefined), 10_000, 'session and part removed');
    expect((await pull('atk/b2', sha256(bytes))).status).toBe(404);
    // The same blob pushed whole afterwards is stored.
    expect((await post('atk/b2', sha256(bytes), bytes)).status).toBe(201);
    expect((await pull('atk/b2', sha256(bytes))).bytes.equals(bytes)).toBe(true);
  }, 30_000);

  it.each([
    ['the blob index write', (op: string, key: string) => op === 'put' && key.startsWith('blobs/')],
    ['the link', (op: string, key: string) => op === 'put' && key.startsWith('repositories/')],
    ['the session delete', (op: string, key: string) => op === 'delete' && key.startsWith('uploads/')],
  ])('a store failing at %s: the retry succeeds and the collector keeps the blob whole', async (_name, failing) => {
    const bytes = randomBytes(150 * 1024);
    const digest = sha256(bytes);
    const repo = `atk/fail-${randomBytes(3).toString('hex')}`;
    fault.state.failing = failing;
    const first = await post(repo, digest, bytes);
    expect(first.status).toBeGreaterThanOrEqual(500);
    expect(fault.state.failing).toBeUndefined();
    const retry = await post(repo, digest, bytes);
    expect(retry.status).toBe(201);
    expect((await pull(repo, digest)).bytes.equals(bytes)).toBe(true);
    // What the failure left: sessions expire, then their unreferenced data goes.
    await registry.registry.uploads.expire(0, Date.now() + 1000);
    await sweepUploadData(real, { olderThanMs: Date.now() + 1000 });
    expect((await pull(repo, digest)).bytes.equals(bytes)).toBe(true);
    expect(await unreferencedParts(real)).toEqual([]);
    expect(await assertNoPartialBlobs(real)).toBeGreaterThan(0);
  }, 60_000);

  it('deduplicates against a stored blob and survives concurrent uploads of one blob', async () => {
    const bytes = randomBytes(300 * 1024);
    const digest = sha256(bytes);
    expect((await post('atk/c0', digest, bytes)).status).toBe(201);
    const repos = ['atk/c0', 'atk/c0', 'atk/c1', 'atk/c2', 'atk/c1', 'atk/c3'];
    const fresh = randomBytes(300 * 1024);
    const results = await Promise.all([
      ...repos.map((r) => post(r, digest, bytes)),
      ...repos.map((r) => post(r, sha256(fresh), fresh)),
    ]);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 201));
    await registry.registry.uploads.expire(0, Date.now() + 1000);
    await sweepUploadData(real, { olderThanMs: Date.now() + 1000 });
    for (const r of repos) {
      expect((await pull(r, digest)).bytes.equals(bytes)).toBe(true);
      expect((await pull(r, sha256(fresh))).bytes.equals(fresh)).toBe(true);
    }
    expect(await sessions(real)).toEqual([]);
    expect(await unreferencedParts(real)).toEqual([]);
    expect(await assertNoPartialBlobs(real)).toBeGreaterThan(1);
  }, 60_000);
});
