// The contract suite on the S3 driver against real OpenStack Swift (started by the global setup),
// in a fresh bucket that is emptied and removed at the end, plus what only S3 has: check() and
// its error messages, bucket creation, unreachable endpoints.
//
// Leftovers are seen from outside the driver: every object in the bucket (whatever its prefix) and
// Swift's "<bucket>+segments" container, where s3api keeps the parts of pending multipart uploads
// and of completed ones: an upload the driver forgot to abort shows up there.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Client } from 'minio';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageUnavailableError } from '../../src/storage/errors.js';
import { S3Store, type S3Options } from '../../src/storage/s3.js';
import { readAll } from '../../src/storage/streams.js';
import { freePort } from '../helpers/ports.js';
import { SWIFT_CREDENTIALS, SWIFT_ENDPOINT } from '../services/swift.js';
import { defineStorageSuite } from './suite.js';

const MiB = 1024 * 1024;

function options(overrides: Partial<S3Options> = {}): S3Options {
  return {
    endpoint: SWIFT_ENDPOINT,
    bucket: `drreg-suite-${Date.now()}-${randomBytes(3).toString('hex')}`,
    ...SWIFT_CREDENTIALS,
    pathStyle: true,
    prefix: '',
    partSize: 5 * MiB, // the smallest S3 allows, so a few MiB already make a multipart upload
    concurrency: 3,
    createBucket: true,
    ...overrides,
  };
}

/** A plain minio client on the test Swift, to look at buckets from outside the driver. */
const admin = new Client({
  endPoint: new URL(SWIFT_ENDPOINT).hostname,
  port: Number(new URL(SWIFT_ENDPOINT).port),
  useSSL: false,
  pathStyle: true,
  ...SWIFT_CREDENTIALS,
});

async function objectsIn(bucket: string): Promise<string[]> {
  const names: string[] = [];
  for await (const obj of admin.listObjectsV2(bucket, '', true)) if (obj.name) names.push(obj.name);
  return names;
}

/** Objects in Swift's segments container of `bucket`, through Swift's own API (S3 cannot see it). */
async function segmentsOf(bucket: string): Promise<string[]> {
  const auth = await fetch(`${SWIFT_ENDPOINT}/auth/v1.0`, {
    headers: { 'X-Auth-User': SWIFT_CREDENTIALS.accessKey, 'X-Auth-Key': SWIFT_CREDENTIALS.secretKey },
  });
  const headers = { 'X-Auth-Token': auth.headers.get('x-auth-token') ?? '' };
  const container = `${bucket}+segments`;
  const res = await fetch(`${auth.headers.get('x-storage-url')}/${encodeURIComponent(container)}?format=json`, { headers });
  if (res.status === 404) return [];
  if (!res.ok) throw new Error(`listing ${container}: HTTP ${res.status}`);
  return ((await res.json()) as Array<{ name: string }>).map((o) => `${container}/${o.name}`);
}

/** Empties and removes a bucket; Swift's s3api removes its segments container with it. */
async function removeBucket(bucket: string): Promise<void> {
  if (!(await admin.bucketExists(bucket))) return;
  const names = await objectsIn(bucket);
  for (let i = 0; i < names.length; i += 1000) await admin.removeObjects(bucket, names.slice(i, i + 1000));
  await admin.removeBucket(bucket);
}

// A prefix inside the bucket, so the suite also checks the driver strips it and stays under it.
defineStorageSuite('s3 on Swift', async () => {
  const settings = options({ prefix: 'under/prefix/' });
  const store = new S3Store(settings);
  await store.check();
  return {
    store,
    cleanup: () => removeBucket(settings.bucket),
    leftovers: async () => [...(await objectsIn(settings.bucket)), ...(await segmentsOf(settings.bucket))],
  };
});

describe('S3Store on Swift', () => {
  const buckets: string[] = [];
  /** A store on its own bucket, removed after the tests. */
  const storeWith = (overrides: Partial<S3Options> = {}) => {
    const settings = options(overrides);
    buckets.push(settings.bucket);
    return { store: new S3Store(settings), settings };
  };
  afterAll(async () => {
    for (const bucket of buckets) await removeBucket(bucket);
  });

  it('check() creates a missing bucket when createBucket is set', async () => {
    const { store, settings } = storeWith();
    expect(await admin.bucketExists(settings.bucket)).toBe(false);
    await store.check();
    expect(await admin.bucketExists(settings.bucket)).toBe(true);
    await store.check(); // and accepts it once it exists
    await store.put('k', Buffer.from('v'));
    expect(await objectsIn(settings.bucket)).toEqual(['k']); // the probe object is gone
  });

  it('check() refuses a missing bucket when createBucket is off, naming endpoint and bucket', async () => {
    const { store, settings } = storeWith({ createBucket: false });
    const err = await store.check().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect((err as Error).message).toContain(`${SWIFT_ENDPOINT} bucket ${settings.bucket}`);
    expect((err as Error).message).toMatch(/does not exist.*createBucket/);
    expect(await admin.bucketExists(settings.bucket)).toBe(false);
  });

  it('check() with a wrong secret fails with StorageUnavailableError naming the endpoint', async () => {
    const { store, settings } = storeWith({ secretKey: 'not-the-secret' });
    const err = await store.check().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect((err as Error).message).toContain(`${SWIFT_ENDPOINT} bucket ${settings.bucket}`);
    expect((err as Error).message).toMatch(/AccessDenied|SignatureDoesNotMatch|InvalidAccessKeyId/);
  });

  it('check() against a port nobody listens on fails at once, naming the endpoint', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const { store } = storeWith({ endpoint });
    const started = Date.now();
    const err = await store.check().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect((err as Error).message).toContain(endpoint);
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('maps an unreachable store to StorageUnavailableError in every operation', async () => {
    const { store } = storeWith({ endpoint: `http://127.0.0.1:${await freePort()}` });
    const source = Readable.from([randomBytes(1000)]);
    await expect(store.put('k', source)).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(source.destroyed).toBe(true);
    await expect(store.put('k', randomBytes(12 * MiB))).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.get('k')).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.get('k', { start: 0, end: 40 * MiB })).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.stat('k')).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.delete('k')).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.list('')[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(StorageUnavailableError);
  });

  it('a body that does not match its declared size fails and leaves nothing', async () => {
    const { store, settings } = storeWith();
    await store.check();
    await expect(store.put('short', Readable.from([randomBytes(100)]), { size: 101 })).rejects.toThrow(/declared size/);
    await expect(store.put('long', Readable.from([randomBytes(11 * MiB)]), { size: 6 * MiB })).rejects.toThrow(/declared size/);
    expect([...(await objectsIn(settings.bucket)), ...(await segmentsOf(settings.bucket))]).toEqual([]);
  }, 30_000);

  it('concurrent multipart writers to one key leave exactly one whole value', async () => {
    // Own bucket: Swift's s3api (2.30) keeps the segments of an overwritten multipart object
    // orphaned in "<bucket>+segments"; only removing the bucket frees them.
    const { store } = storeWith();
    await store.check();
    const values = Array.from({ length: 3 }, (_, i) => randomBytes(11 * MiB + i));
    await Promise.all(values.map((v) => store.put('race', Readable.from([v.subarray(0, 3 * MiB), v.subarray(3 * MiB)]))));
    const got = await readAll(await store.get('race'));
    expect(values.filter((v) => v.equals(got))).toHaveLength(1);
  }, 60_000);
});
