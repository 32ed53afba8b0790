// The stores integration tests run on: the embedded filesystem and S3 on real Swift. Each factory
// gives a fresh, empty store and a cleanup that removes everything.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'minio';
import type { ObjectStore } from '../../src/storage/driver.js';
import type { Keyring } from '../../src/crypto/keyring.js';
import { Metrics } from '../../src/metrics.js';
import { EncryptedStore } from '../../src/storage/encrypted.js';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { MeteredStore } from '../../src/storage/metered.js';
import { S3Store, type S3Options } from '../../src/storage/s3.js';
import { SWIFT_CREDENTIALS, SWIFT_ENDPOINT } from '../services/swift.js';

export interface StoreFactory {
  name: string;
  make(): Promise<{ store: ObjectStore; cleanup(): Promise<void> }>;
}

export function filesystemFactory(): StoreFactory {
  return {
    name: 'filesystem',
    async make() {
      const root = await mkdtemp(path.join(tmpdir(), 'drreg-store-'));
      return { store: new FilesystemStore({ root, fsync: false }), cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  };
}

/** Settings for an S3 store on the test Swift, in a bucket of its own. */
export function swiftOptions(bucket = `drreg-${Date.now()}-${randomBytes(3).toString('hex')}`): S3Options {
  return {
    endpoint: SWIFT_ENDPOINT,
    bucket,
    region: SWIFT_CREDENTIALS.region,
    accessKey: SWIFT_CREDENTIALS.accessKey,
    secretKey: SWIFT_CREDENTIALS.secretKey,
    pathStyle: true,
    prefix: '',
    partSize: 5 * 1024 * 1024,
    concurrency: 4,
    createBucket: true,
    redirect: false,
  };
}

/** Empties a test bucket and removes it. */
export async function removeBucket(options: S3Options): Promise<void> {
  const url = new URL(options.endpoint);
  const client = new Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: false,
    accessKey: options.accessKey,
    secretKey: options.secretKey,
    region: options.region,
    pathStyle: true,
  });
  const names: string[] = [];
  for await (const obj of client.listObjectsV2(options.bucket, '', true)) if (obj.name) names.push(obj.name);
  for (let i = 0; i < names.length; i += 500) await client.removeObjects(options.bucket, names.slice(i, i + 500));
  await client.removeBucket(options.bucket);
}

export function s3Factory(): StoreFactory {
  return {
    name: 's3 on Swift',
    async make() {
      const options = swiftOptions();
      const store = new S3Store(options);
      await store.check();
      return { store, cleanup: () => removeBucket(options) };
    },
  };
}

/** A fresh in-memory keyring with one active key. */
export function testKeyring(id = 'k1'): Keyring {
  return { active: id, keys: new Map([[id, randomBytes(32)]]) };
}

/** `inner` wrapped in the encryption decorator, checked (so its data key exists). */
export function encryptedFactory(inner: StoreFactory): StoreFactory {
  return {
    name: `encrypted(${inner.name})`,
    async make() {
      const made = await inner.make();
      const store = new EncryptedStore(made.store, testKeyring());
      await store.check();
      return { store, cleanup: made.cleanup };
    },
  };
}

/** `inner` wrapped in the metrics decorator (what the server runs on). */
export function meteredFactory(inner: StoreFactory): StoreFactory {
  return {
    name: `metered(${inner.name})`,
    async make() {
      const made = await inner.make();
      return { store: new MeteredStore(made.store, new Metrics()), cleanup: made.cleanup };
    },
  };
}

export function storeFactories(): StoreFactory[] {
  return [filesystemFactory(), s3Factory()];
}
