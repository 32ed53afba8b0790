// The registries the DR benchmark compares, each on a fresh, empty store: dr-registry (filesystem,
// S3 on Swift, encrypted on Swift) and CNCF Distribution 2.8 (filesystem, S3 on Swift). Each
// target says how much its store holds: everything, and the blob bytes alone.
import { readdir, lstat, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'minio';
import { newKey, saveKeyring } from '../../src/crypto/keyring.js';
import { startRegistryProcess } from '../../test/helpers/process.js';
import { removeBucket, swiftOptions } from '../../test/helpers/stores.js';
import { startDistribution } from '../../test/services/distribution.js';
import { SWIFT_CREDENTIALS, SWIFT_ENDPOINT } from '../../test/services/swift.js';
import { startOurs } from '../lib.js';

export const TARGETS = ['ours-fs', 'ours-swift', 'ours-swift-enc', 'dist-fs', 'dist-swift'] as const;
export type TargetName = (typeof TARGETS)[number];

export const TARGET_LABELS: Record<TargetName, string> = {
  'ours-fs': 'dr-registry, filesystem',
  'ours-swift': 'dr-registry, Swift (S3)',
  'ours-swift-enc': 'dr-registry, Swift (S3), encrypted',
  'dist-fs': 'Distribution 2.8, filesystem',
  'dist-swift': 'Distribution 2.8, Swift (S3)',
};

/** The Distribution target measured on the same store, for ratios. */
export const REFERENCE: Record<TargetName, TargetName | undefined> = {
  'ours-fs': 'dist-fs',
  'ours-swift': 'dist-swift',
  'ours-swift-enc': 'dist-swift',
  'dist-fs': undefined,
  'dist-swift': undefined,
};

export interface StoreUsage {
  /** Every byte the store holds for this registry. */
  total: number;
  /** Bytes of blob content (dr-registry: upload parts under data/; Distribution: blobs/.../data). */
  blobs: number;
  objects: number;
}

export interface RunningTarget {
  name: TargetName;
  url: string;
  pid: number;
  /** What the registry settings were, for the report. */
  settings: string;
  usage(): Promise<StoreUsage>;
  stop(): Promise<void>;
}

async function walk(dir: string, visit: (file: string, size: number) => void): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, visit);
    else if (entry.isFile()) {
      // A running registry renames and removes files as we walk (its temp files): skip those.
      const size = await lstat(full).then((st) => st.size, () => undefined);
      if (size !== undefined) visit(full, size);
    }
  }
}

function usageOf(isBlob: (key: string) => boolean, list: (visit: (key: string, size: number) => void) => Promise<void>) {
  return async (): Promise<StoreUsage> => {
    const u = { total: 0, blobs: 0, objects: 0 };
    await list((key, size) => {
      u.total += size;
      u.objects++;
      if (isBlob(key)) u.blobs += size;
    });
    return u;
  };
}

const fsLister = (root: string) => (visit: (key: string, size: number) => void) => walk(root, (file, size) => visit(path.relative(root, file), size));

function bucketLister(endpoint: string, bucket: string) {
  const url = new URL(endpoint);
  const client = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, pathStyle: true, ...SWIFT_CREDENTIALS });
  return {
    client,
    list: async (visit: (key: string, size: number) => void) => {
      for await (const obj of client.listObjectsV2(bucket, '', true)) if (obj.name) visit(obj.name, obj.size);
    },
  };
}

const oursIsBlob = (key: string) => key.startsWith('data/');
const distIsBlob = (key: string) => /^docker\/registry\/v2\/blobs\/.*\/data$/.test(key);

/**
 * Starts a target. dr-registry runs from dist/ (build first), or from src/ with tsx when
 * `fromSource` (the smoke test, where nothing is built). Its DR setting is on: a HEAD of a blob
 * another repository holds links it (dedup.linkExistingOnHead). Swift targets use the S3 endpoint
 * `swiftEndpoint` (default: the test suite's shared Swift).
 */
export async function startTarget(name: TargetName, opts: { fromSource?: boolean; swiftEndpoint?: string } = {}): Promise<RunningTarget> {
  const endpoint = opts.swiftEndpoint ?? SWIFT_ENDPOINT;
  const swift = (bucket: string) => ({ ...swiftOptions(bucket), endpoint });
  const dir = await mkdtemp(path.join(tmpdir(), `drreg-bench-${name}-`));
  const bucket = `bench-${name}-${Date.now()}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  const finish = (started: { url: string; pid: number; stop(): Promise<void> }, settings: string, usage: () => Promise<StoreUsage>): RunningTarget => ({
    name,
    url: started.url,
    pid: started.pid,
    settings,
    usage,
    async stop() {
      await started.stop();
      for (const c of cleanups) await c();
      await rm(dir, { recursive: true, force: true });
    },
  });

  if (name.startsWith('ours')) {
    const env: Record<string, string> = { DRREG_DEDUP_LINKEXISTINGONHEAD: 'true' };
    let settings = 'dedup.linkExistingOnHead=true';
    let usage;
    if (name === 'ours-fs') {
      const root = path.join(dir, 'data');
      Object.assign(env, { DRREG_STORAGE_FILESYSTEM_ROOT: root });
      settings += ', storage.filesystem.fsync=true (default)';
      usage = usageOf(oursIsBlob, fsLister(root));
    } else {
      const o = swift(bucket);
      Object.assign(env, {
        DRREG_STORAGE_DRIVER: 's3',
        DRREG_STORAGE_S3_ENDPOINT: o.endpoint,
        DRREG_STORAGE_S3_BUCKET: bucket,
        DRREG_STORAGE_S3_ACCESSKEY: o.accessKey,
        DRREG_STORAGE_S3_SECRETKEY: o.secretKey,
      });
      settings += ', storage.s3 defaults (partSize 16MiB, concurrency 2)';
      usage = usageOf(oursIsBlob, bucketLister(endpoint, bucket).list);
      cleanups.push(() => removeBucket(o));
    }
    if (name === 'ours-swift-enc') {
      const keyring = path.join(dir, 'keyring.yml');
      await saveKeyring(keyring, { active: 'bench', keys: new Map([['bench', newKey()]]) });
      env.DRREG_ENCRYPTION_KEYRING = keyring;
      settings += ', encryption.keyring set';
    }
    const started = opts.fromSource ? await startRegistryProcess(env) : await startOurs(name, env);
    return finish(started, settings, usage);
  }

  if (name === 'dist-fs') {
    const root = path.join(dir, 'data');
    return finish(await startDistribution({ rootDir: root }), 'filesystem driver, delete enabled', usageOf(distIsBlob, fsLister(root)));
  }
  const lister = bucketLister(endpoint, bucket);
  await lister.client.makeBucket(bucket, SWIFT_CREDENTIALS.region); // Distribution does not create it
  cleanups.push(() => removeBucket(swift(bucket)));
  const started = await startDistribution({ s3: { endpoint, bucket, ...SWIFT_CREDENTIALS } });
  return finish(started, 's3 driver on Swift (path style, v4 auth), delete enabled', usageOf(distIsBlob, lister.list));
}
