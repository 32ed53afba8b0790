// Issue 10, item 4: a truncated encrypted object read by range. It answered 206 with a declared
// length, sent nothing and held the connection until the idle timeout, logging nothing. Every read
// of damaged encrypted data must end in an integrity error, logged with the object's key, whatever
// the range: answered as an error before anything is sent when the sizes already disagree, or a
// cut-off response when the ciphertext ends early, never a response that waits.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveKeyring } from '../../src/crypto/keyring.js';
import { S3Store } from '../../src/storage/s3.js';
import { readAll } from '../../src/storage/streams.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions, testKeyring } from '../helpers/stores.js';
import { pushBlob } from '../http/client.js';

const HEADER = 61;
const SEALED_SEGMENT = 65536 + 16;
const BLOB = 300_000; // 5 segments, the last one partial

interface Damage {
  /** Object key of the blob's one part. */
  partKey(): Promise<string>;
  read(key: string): Promise<Buffer>;
  write(key: string, bytes: Buffer): Promise<void>;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'drreg-trunc-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

const stores: Array<[string, () => Promise<{ env: Record<string, string>; root?: string; damage: Damage; cleanup(): Promise<void> }>]> = [
  [
    'filesystem',
    async () => {
      const root = await mkdtemp(path.join(work, 'fs-'));
      const file = (key: string) => path.join(root, ...key.split('/'));
      return {
        env: {},
        root,
        damage: {
          async partKey() {
            const [id] = await readdir(path.join(root, 'data'));
            const [name] = await readdir(path.join(root, 'data', id!));
            return `data/${id}/${name}`;
          },
          read: (key) => readFile(file(key)),
          write: (key, bytes) => writeFile(file(key), bytes),
        },
        cleanup: () => rm(root, { recursive: true, force: true }),
      };
    },
  ],
  [
    'Swift (S3)',
    async () => {
      const options = swiftOptions();
      const raw = new S3Store(options); // under the encryption: sees and writes ciphertext
      await raw.check();
      return {
        env: {
          DRREG_STORAGE_DRIVER: 's3',
          DRREG_STORAGE_S3_ENDPOINT: options.endpoint,
          DRREG_STORAGE_S3_BUCKET: options.bucket,
          DRREG_STORAGE_S3_ACCESSKEY: options.accessKey,
          DRREG_STORAGE_S3_SECRETKEY: options.secretKey,
        },
        damage: {
          async partKey() {
            for await (const obj of raw.list('data/')) return obj.key;
            throw new Error('no part stored');
          },
          read: async (key) => readAll(await raw.get(key)),
          write: async (key, bytes) => void (await raw.put(key, bytes)),
        },
        cleanup: async () => {
          await raw.close();
          await removeBucket(options);
        },
      };
    },
  ],
];

describe.each(stores)('a truncated encrypted blob on %s', (_name, make) => {
  let registry: TestRegistry;
  let made: Awaited<ReturnType<typeof make>>;
  let digest: string;
  let partKey: string;
  const logs: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    made = await make();
    const keyring = path.join(work, `keyring-${randomBytes(4).toString('hex')}.yml`);
    await saveKeyring(keyring, testKeyring());
    registry = await startTestRegistry({ root: made.root, env: { ...made.env, DRREG_ENCRYPTION_KEYRING: keyring }, logLines: logs });
    digest = await pushBlob(registry.url, 'enc/trunc', randomBytes(BLOB));
    partKey = await made.damage.partKey();
    // Cut at a segment boundary: the stored size is still one that sealing produces.
    const sealed = await made.damage.read(partKey);
    await made.damage.write(partKey, sealed.subarray(0, HEADER + 2 * SEALED_SEGMENT));
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
    await made?.cleanup();
  });

  /** The response's status and body, or the error that cut it; a hang fails the test at 10 s. */
  async function get(range?: string): Promise<{ status?: number; length?: number; error?: string }> {
    try {
      const res = await fetch(`${registry.url}/v2/enc/trunc/blobs/${digest}`, {
        headers: range ? { Range: range } : {},
        signal: AbortSignal.timeout(10_000),
      });
      const body = Buffer.from(await res.arrayBuffer());
      return { status: res.status, length: body.length };
    } catch (err) {
      const e = err as Error;
      if (e.name === 'TimeoutError') throw new Error(`GET ${range ?? '(whole)'} hung: no answer and no error within 10 s`);
      return { error: e.message };
    }
  }

  const integrityLogged = () =>
    logs.some((l) => (l.level === 50 || l.level === 'error') && JSON.stringify(l.err ?? '').includes(partKey) && JSON.stringify(l.err ?? '').includes('IntegrityError'));

  it.each([
    ['a range past the truncated end', `bytes=${BLOB - 50_000}-${BLOB - 1}`],
    ['a range that starts inside and ends past it', 'bytes=100000-200000'],
    ['a suffix range', 'bytes=-1000'],
    ['an open-ended range', 'bytes=140000-'],
    ['no range (the whole blob)', undefined],
    // Within the stored bytes, but through its last segment, which does not open as the final one.
    ['a range that ends in the last stored segment', 'bytes=0-99999'],
  ])('%s ends in an integrity error, logged with the key', async (_case, range) => {
    logs.length = 0;
    const outcome = await get(range);
    // Either refused before anything was sent, or cut off: never the declared length.
    if (outcome.status !== undefined) {
      expect(outcome.status).toBeGreaterThanOrEqual(500);
    } else {
      expect(outcome.error).toBeDefined();
    }
    await expect.poll(integrityLogged, { timeout: 5000 }).toBe(true);
  });

  it('a range that ends before the last stored segment is still served (it verifies)', async () => {
    const outcome = await get('bytes=0-60000');
    expect(outcome).toEqual({ status: 206, length: 60_001 });
  });
});
