// Encryption at rest, end to end: what a bucket reader sees, what tampering does, what start-up
// says about keys, and rotation while the registry serves.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../src/audit/log.js';
import { loadConfig } from '../../src/config/index.js';
import { loadKeyring, saveKeyring } from '../../src/crypto/keyring.js';
import { EncryptedStore } from '../../src/storage/encrypted.js';
import { IntegrityError } from '../../src/storage/errors.js';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { readAll } from '../../src/storage/streams.js';
import { startTestRegistry } from '../helpers/registry.js';
import { testKeyring } from '../helpers/stores.js';
import { pushBlob, pushImage, putManifest, OCI_MANIFEST, sha256 } from '../http/client.js';

const run = promisify(execFile);
const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');
const cli = (args: string[], env: Record<string, string>) =>
  run(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'drreg-enc-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

describe('what the storage holds', () => {
  it('shows no plaintext marker and no pushed digest, and pulls back identical bytes', async () => {
    const root = path.join(work, 'scan');
    const keyring = path.join(work, 'scan-keyring.yml');
    await saveKeyring(keyring, testKeyring());
    const registry = await startTestRegistry({ root, env: { DRREG_ENCRYPTION_KEYRING: keyring } });
    const marker = `SECRET-MARKER-${randomBytes(6).toString('hex')}`;
    const layer = Buffer.concat([randomBytes(200_000), Buffer.from(marker), randomBytes(1000)]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: [`PASSWORD=${marker}`] } }));
    await pushBlob(registry.url, 'enc/app', layer);
    await pushBlob(registry.url, 'enc/app', config);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      annotations: { note: marker },
    };
    const pushed = await putManifest(registry.url, 'enc/app', 'latest', manifest, OCI_MANIFEST);
    expect(pushed.res.status).toBe(201);
    const pushedDigests = new Set([sha256(layer), sha256(config), pushed.digest]);

    const files = await filesUnder(root);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const bytes = await readFile(file);
      expect(bytes.includes(Buffer.from(marker)), file).toBe(false);
      expect(pushedDigests.has(sha256(bytes)), file).toBe(false);
    }
    const back = Buffer.from(await (await fetch(`${registry.url}/v2/enc/app/blobs/${sha256(layer)}`)).arrayBuffer());
    expect(back.equals(layer)).toBe(true);
    expect(await (await fetch(`${registry.url}/v2/enc/app/manifests/latest`)).text()).toBe(pushed.bytes.toString());
    await registry.stop();
  });
});

describe('tampering', () => {
  let inner: FilesystemStore;
  let store: EncryptedStore;
  let root: string;
  const content = randomBytes(3 * 64 * 1024 + 500); // four segments

  beforeAll(async () => {
    root = path.join(work, 'tamper');
    inner = new FilesystemStore({ root, fsync: false });
    store = new EncryptedStore(inner, testKeyring());
    await store.check();
  });

  const file = (key: string) => path.join(root, ...key.split('/'));
  const readBack = async (key: string, range?: { start: number; end?: number }) => readAll(await store.get(key, range));

  async function tampered(name: string, change: (bytes: Buffer) => Buffer): Promise<string> {
    const key = `t/${name}`;
    await store.put(key, content);
    const bytes = await readFile(file(key));
    await writeFile(file(key), change(Buffer.from(bytes)));
    return key;
  }

  it('reads back what was written, whole and in ranges', async () => {
    await store.put('t/ok', content);
    expect((await readBack('t/ok')).equals(content)).toBe(true);
    expect((await readBack('t/ok', { start: 70_000, end: 140_000 })).equals(content.subarray(70_000, 140_001))).toBe(true);
  });

  it.each([
    ['a flipped bit in a segment', (b: Buffer) => ((b[1000] = b[1000]! ^ 1), b)],
    ['a flipped bit in the header salt', (b: Buffer) => ((b[30] = b[30]! ^ 1), b)],
    ['the last segment cut off', (b: Buffer) => b.subarray(0, 61 + 3 * (65536 + 16))],
    ['a truncated tail', (b: Buffer) => b.subarray(0, b.length - 10)],
    ['two segments swapped', (b: Buffer) => {
      const s = 65536 + 16;
      const one = Buffer.from(b.subarray(61, 61 + s));
      b.copy(b, 61, 61 + s, 61 + 2 * s);
      one.copy(b, 61 + s);
      return b;
    }],
    ['a segment appended', (b: Buffer) => Buffer.concat([b, b.subarray(61, 61 + 65536 + 16)])],
  ])('detects %s', async (name, change) => {
    const key = await tampered(name.replaceAll(' ', '-'), change);
    await expect(readBack(key)).rejects.toBeInstanceOf(IntegrityError);
    await expect(readBack(key)).rejects.toThrow(key);
  });

  it('detects an object moved under another key', async () => {
    await store.put('t/a', content);
    await store.put('t/b', randomBytes(100));
    await writeFile(file('t/b'), await readFile(file('t/a')));
    await expect(readBack('t/b')).rejects.toBeInstanceOf(IntegrityError);
  });

  it('a tampered blob never reaches a client as wrong bytes', async () => {
    const blobRoot = path.join(work, 'tamper-blob');
    const keyring = path.join(work, 'tamper-keyring.yml');
    await saveKeyring(keyring, testKeyring());
    const registry = await startTestRegistry({ root: blobRoot, env: { DRREG_ENCRYPTION_KEYRING: keyring } });
    const blob = randomBytes(300_000);
    const digest = await pushBlob(registry.url, 'enc/t', blob);
    const [part] = await filesUnder(path.join(blobRoot, 'data')); // the blob is one part
    const bytes = await readFile(part!);
    bytes[bytes.length - 100]! ^= 0xff; // inside the last segment: earlier segments still verify
    await writeFile(part!, bytes);
    // Headers and the verified segments may already be on their way; the last never is, so the
    // client sees a cut-off response (an error), never the tampered bytes.
    const outcome = await fetch(`${registry.url}/v2/enc/t/blobs/${digest}`)
      .then(async (r) => Buffer.from(await r.arrayBuffer()))
      .catch((err: Error) => err);
    expect(outcome).toBeInstanceOf(Error);
    await registry.stop();
  });
});

describe('keys at start-up', () => {
  it('refuses a keyring without the key that wrapped the data keys, naming it', async () => {
    const root = path.join(work, 'startup');
    const keyring = path.join(work, 'startup-keyring.yml');
    await saveKeyring(keyring, testKeyring('old1'));
    const registry = await startTestRegistry({ root, env: { DRREG_ENCRYPTION_KEYRING: keyring } });
    await pushBlob(registry.url, 'enc/s', Buffer.from('x'));
    await registry.stop();

    await saveKeyring(keyring, testKeyring('other'));
    await expect(startTestRegistry({ root, env: { DRREG_ENCRYPTION_KEYRING: keyring } })).rejects.toThrow(
      /wrapped by key-encryption key "old1", which the keyring does not hold/,
    );
    await saveKeyring(keyring, testKeyring('old1')); // same id, different bytes
    await expect(startTestRegistry({ root, env: { DRREG_ENCRYPTION_KEYRING: keyring } })).rejects.toThrow(
      /key "old1" in the keyring is not the key that wrapped/,
    );
    await expect(startTestRegistry({ root, env: { DRREG_ENCRYPTION_KEYRING: path.join(work, 'nope.yml') } })).rejects.toThrow(/cannot read keyring/);
  });
});

describe('key rotation', () => {
  it('rotates while pushes and pulls run; the old key can then be retired and everything reads', async () => {
    const root = path.join(work, 'rotate');
    const keyring = path.join(work, 'rotate-keyring.yml');
    const env = { DRREG_STORAGE_FILESYSTEM_ROOT: root, DRREG_ENCRYPTION_KEYRING: keyring, DRREG_STORAGE_FILESYSTEM_FSYNC: 'false' };
    await cli(['keys', 'generate', '--keyring', keyring], {});
    const oldKey = (await loadKeyring(keyring)).active;
    const registry = await startTestRegistry({ root, env: { DRREG_ENCRYPTION_KEYRING: keyring } });
    const pushed = new Map<string, Buffer>();
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop && i < 500; i++) {
        const blob = randomBytes(20_000 + i);
        const digest = await pushBlob(registry.url, 'enc/rot', blob);
        pushed.set(digest, blob);
        const [someDigest, someBlob] = [...pushed][Math.floor(Math.random() * pushed.size)]!;
        const back = Buffer.from(await (await fetch(`${registry.url}/v2/enc/rot/blobs/${someDigest}`)).arrayBuffer());
        expect(back.equals(someBlob)).toBe(true);
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const rotated = await cli(['keys', 'rotate'], env);
    expect(rotated.stdout).toMatch(/re-wrapped data key .* \(1\/1\)/);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await traffic;
    await registry.stop();
    expect(pushed.size).toBeGreaterThan(3);

    const status = await cli(['keys', 'status'], env);
    expect(status.stdout).toContain(`${oldKey}: wraps 0 data key(s), can be retired`);
    await cli(['keys', 'retire', oldKey], env);
    expect((await loadKeyring(keyring)).keys.has(oldKey)).toBe(false);

    const after = await startTestRegistry({ root, env: { DRREG_ENCRYPTION_KEYRING: keyring } });
    for (const [digest, blob] of pushed) {
      const back = Buffer.from(await (await fetch(`${after.url}/v2/enc/rot/blobs/${digest}`)).arrayBuffer());
      expect(back.equals(blob)).toBe(true);
    }
    // Both key changes are on the audit trail (written encrypted, like every object).
    const records = await listAudit(after.store, {});
    expect(records.find((r) => r.action === 'key.rotate')).toMatchObject({ actor: { kind: 'cli' }, detail: { rewrapped: 1 } });
    expect(records.find((r) => r.action === 'key.retire')).toMatchObject({ detail: { key: oldKey } });
    await after.stop();
    // The keyring file is the operator's secret: owner-only.
    expect((await stat(keyring)).mode & 0o077).toBe(0);
    expect(loadConfig({ env }).encryption.keyring).toBe(keyring);
  }, 120_000);
});
