// The store's encryption state (issue 10, item 5; docs/encryption.md): a registry or CLI whose
// configuration disagrees with the store refuses to start and names encryption.keyring, and a
// plaintext store with data is encrypted online by `dr-registry keys encrypt-store` while a
// registry serves it. On the filesystem and on Swift.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveKeyring } from '../../src/crypto/keyring.js';
import { MAGIC } from '../../src/crypto/envelope.js';
import type { ObjectStore } from '../../src/storage/driver.js';
import { isData, readMarker } from '../../src/storage/encryption-state.js';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { S3Store } from '../../src/storage/s3.js';
import { readAll } from '../../src/storage/streams.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions, testKeyring } from '../helpers/stores.js';
import { OCI_MANIFEST, pushImage, putManifest } from '../http/client.js';

const execFileP = promisify(execFile);
const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

/** Runs the CLI; resolves with its exit code and output whatever the code. */
async function cli(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface Backend {
  name: string;
  make(work: string): Promise<{ env: Record<string, string>; driver: ObjectStore; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'filesystem',
    async make(work) {
      const root = path.join(work, 'data');
      return {
        env: { DRREG_STORAGE_FILESYSTEM_ROOT: root, DRREG_STORAGE_FILESYSTEM_FSYNC: 'false' },
        driver: new FilesystemStore({ root, fsync: false }),
        cleanup: async () => {},
      };
    },
  },
  {
    name: 's3 on Swift',
    async make() {
      const options = swiftOptions();
      const driver = new S3Store(options);
      await driver.check();
      return {
        env: {
          DRREG_STORAGE_DRIVER: 's3',
          DRREG_STORAGE_S3_ENDPOINT: options.endpoint,
          DRREG_STORAGE_S3_BUCKET: options.bucket,
          DRREG_STORAGE_S3_ACCESSKEY: options.accessKey,
          DRREG_STORAGE_S3_SECRETKEY: options.secretKey,
          DRREG_STORAGE_S3_PARTSIZE: '5MiB',
        },
        driver,
        cleanup: async () => {
          await driver.close();
          await removeBucket(options);
        },
      };
    },
  },
];

describe.each(backends)('encryption state on $name', ({ make }) => {
  let work: string;
  let env: Record<string, string>;
  let withKeyring: Record<string, string>;
  let driver: ObjectStore;
  let cleanup: () => Promise<void>;
  const running: TestRegistry[] = [];

  const start = async (extra: Record<string, string>) => {
    const r = await startTestRegistry({ env: { ...env, ...extra }, root: path.join(work, 'data') });
    running.push(r);
    return r;
  };

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-encstate-'));
    ({ env, driver, cleanup } = await make(work));
    const keyring = path.join(work, 'keyring.yaml');
    await saveKeyring(keyring, testKeyring('k1'));
    withKeyring = { ...env, DRREG_ENCRYPTION_KEYRING: keyring };
  });
  afterAll(async () => {
    for (const r of running) await r.close().catch(() => undefined);
    await cleanup?.();
    await rm(work, { recursive: true, force: true });
  });

  it('refuses mismatches, encrypts the store online, and stays consistent', async () => {
    // A plaintext registry with an image.
    const plain = await start({});
    const a = await pushImage(plain.url, 'enc/app', 'before');
    expect((await putManifest(plain.url, 'enc/app', 'a', a, OCI_MANIFEST)).res.status).toBe(201);
    await plain.close();
    expect((await readMarker(driver))?.state).toBe('plaintext');

    // A keyring over a plaintext store that holds data: refused, naming the key and the way out.
    await expect(start({ DRREG_ENCRYPTION_KEYRING: withKeyring.DRREG_ENCRYPTION_KEYRING! })).rejects.toThrow(/holds unencrypted data.*encryption\.keyring.*keys encrypt-store/);

    // Step 1 marks the store; registries with the keyring then serve it (mixed).
    const step1 = await cli(['keys', 'encrypt-store'], withKeyring);
    expect(step1.code, step1.stderr).toBe(0);
    expect(step1.stdout).toMatch(/step 1 of 2/);
    const mixed = await start({ DRREG_ENCRYPTION_KEYRING: withKeyring.DRREG_ENCRYPTION_KEYRING! });
    const pullA = async () => {
      const r = await fetch(`${mixed.url}/v2/enc/app/manifests/a`, { headers: { Accept: OCI_MANIFEST } });
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(JSON.stringify(a));
      const layer = await fetch(`${mixed.url}/v2/enc/app/blobs/${a.layers[0]!.digest}`);
      expect(layer.status).toBe(200);
      expect(await layer.text()).toBe('layer of before');
    };
    await pullA();
    const b = await pushImage(mixed.url, 'enc/app', 'during');
    expect((await putManifest(mixed.url, 'enc/app', 'b', b, OCI_MANIFEST)).res.status).toBe(201);

    // Step 2 while the registry serves: pulls keep working throughout.
    let converting = true;
    const pulls = (async () => {
      let n = 0;
      while (converting || n === 0) {
        await pullA();
        n++;
      }
      return n;
    })();
    const step2 = await cli(['keys', 'encrypt-store'], withKeyring);
    converting = false;
    expect(step2.code, step2.stderr).toBe(0);
    expect(step2.stdout).toMatch(/object\(s\) scanned: \d+ encrypted/);
    expect(step2.stdout).toMatch(/done: every object .* is encrypted/);
    // What the mixed registry wrote is sealed already and skipped: the same skip resumes a run
    // that was interrupted.
    expect(step2.stdout).toMatch(/[1-9]\d* already encrypted/);
    expect(await pulls).toBeGreaterThan(0);

    // Every object of the registry's is sealed now, and the store says so.
    let objects = 0;
    for await (const obj of driver.list('')) {
      if (!isData(obj.key)) continue;
      objects++;
      const head = await readAll(await driver.get(obj.key, { start: 0, end: 3 }));
      expect(head.equals(MAGIC), obj.key).toBe(true);
    }
    expect(objects).toBeGreaterThan(5);
    expect((await readMarker(driver))?.state).toBe('encrypted');
    // Idempotent.
    const again = await cli(['keys', 'encrypt-store'], withKeyring);
    expect(again.stdout).toMatch(/encrypted already: nothing to do/);
    await mixed.close();

    // A strict registry with the keyring serves both images; /healthz reads back.
    const sealed = await start({ DRREG_ENCRYPTION_KEYRING: withKeyring.DRREG_ENCRYPTION_KEYRING! });
    for (const [tag, m] of [['a', a], ['b', b]] as const) {
      const r = await fetch(`${sealed.url}/v2/enc/app/manifests/${tag}`, { headers: { Accept: OCI_MANIFEST } });
      expect(await r.text()).toBe(JSON.stringify(m));
    }
    expect((await fetch(`${sealed.url}/healthz`)).status).toBe(200);
    await sealed.close();

    // Without the keyring: the server and the CLI refuse, naming encryption.keyring, and write nothing.
    await expect(start({})).rejects.toThrow(/is encrypted .*encryption\.keyring is not set/);
    for (const command of [['stats'], ['gc', '--dry-run'], ['prune', '--dry-run']]) {
      const r = await cli(command, env);
      expect(r.code, command.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/encryption\.keyring is not set/);
      expect(r.stderr).not.toMatch(/JSON/);
    }
  }, 180_000);
});

describe('/healthz on an encrypted store', () => {
  it('is not ok when reads fail, though the probe object is there', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'drreg-health-'));
    const keyring = path.join(work, 'keyring.yaml');
    await saveKeyring(keyring, testKeyring('k1'));
    const registry = await startTestRegistry({ root: path.join(work, 'data'), env: { DRREG_ENCRYPTION_KEYRING: keyring } });
    try {
      expect((await fetch(`${registry.url}/healthz`)).status).toBe(200);
      // The probe object stays, but no longer decrypts (a bucket writer, a wrong key, bit rot).
      const driver = new FilesystemStore({ root: path.join(work, 'data'), fsync: false });
      const probe = await readAll(await driver.get('health/probe'));
      probe[probe.length - 1]! ^= 1;
      await driver.put('health/probe', probe);
      let status = 200;
      for (let i = 0; i < 50 && status === 200; i++) {
        status = (await fetch(`${registry.url}/healthz`)).status; // answers are cached for 1 s
        if (status === 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(503);
    } finally {
      await registry.stop();
      await rm(work, { recursive: true, force: true });
    }
  }, 30_000);
});
