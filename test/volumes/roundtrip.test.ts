// Round trips through the real registry on every store (filesystem, S3 on Swift, both encrypted):
// a crafted tree (modes, owners, symlinks, hard links, empty dirs, sparse files, names that are
// not UTF-8, a fifo, xattrs, a 1.5 GiB sparse file) and a real tree (/usr/share/doc) come back
// identical, content and metadata.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/client/registry-client.js';
import { pullVolume } from '../../src/volumes/pull.js';
import { pushVolume } from '../../src/volumes/push.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { encryptedFactory, filesystemFactory, s3Factory, type StoreFactory } from '../helpers/stores.js';
import { compareTrees, makeCraftedTree, makeHugeSparse } from './trees.js';

let work: string;
let crafted: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'drreg-volumes-'));
  crafted = path.join(work, 'crafted');
  makeCraftedTree(crafted);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const factories: StoreFactory[] = [filesystemFactory(), s3Factory(), encryptedFactory(filesystemFactory()), encryptedFactory(s3Factory())];

describe.each(factories)('volume round trip on $name', (factory) => {
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const made = await factory.make();
    cleanup = made.cleanup;
    registry = await startTestRegistry({ store: made.store });
  });
  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  it('a crafted tree comes back identical', async () => {
    const client = new RegistryClient({ registry: registry.hostPort });
    const pushed = await pushVolume({ client, repo: 'vol/crafted', tag: 'v1', dir: crafted });
    expect(pushed.files).toBeGreaterThan(10);
    // Holes are not sent: less than the logical size went over the wire.
    expect(pushed.sentBytes).toBeLessThan(pushed.totalBytes / 4);
    const dest = path.join(work, `restored-${factory.name}`);
    const pulled = await pullVolume({ client: new RegistryClient({ registry: registry.hostPort }), repo: 'vol/crafted', reference: pushed.digest, dest });
    expect(pulled.digest).toBe(pushed.digest);
    expect(compareTrees(crafted, dest)).toEqual([]);
  }, 120_000);
});

describe('a 1.5 GiB sparse file', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('is sent and stored as its data only, and restored sparse', async () => {
    const source = path.join(work, 'huge');
    makeHugeSparse(source);
    const client = new RegistryClient({ registry: registry.hostPort });
    const pushed = await pushVolume({ client, repo: 'vol/huge', tag: 'v1', dir: source });
    expect(pushed.totalBytes).toBeGreaterThan(1536 * 1024 * 1024);
    expect(pushed.sentBytes).toBeLessThan(3 * 1024 * 1024);
    const dest = path.join(work, 'huge-restored');
    await pullVolume({ client, repo: 'vol/huge', reference: 'v1', dest });
    expect(compareTrees(source, dest)).toEqual([]);
  }, 120_000);
});

describe('a real tree', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('/usr/share/doc comes back identical, and an unchanged second push sends almost nothing', async () => {
    const source = '/usr/share/doc';
    const client = new RegistryClient({ registry: registry.hostPort });
    const first = await pushVolume({ client, repo: 'vol/doc', tag: 'latest', dir: source });
    expect(first.files).toBeGreaterThan(1000);
    // Small files share chunks: far fewer blobs than files.
    expect(first.chunks).toBeLessThan(first.files / 4);
    const second = await pushVolume({ client, repo: 'vol/doc', tag: 'latest', dir: source });
    expect(second.parent).toBe(first.digest);
    expect(second.filesRead).toBe(0);
    expect(second.newChunks).toBe(0);
    expect(second.sentBytes).toBeLessThan(first.sentBytes * 0.02);
    const dest = path.join(work, 'doc');
    await pullVolume({ client, repo: 'vol/doc', reference: 'latest', dest });
    expect(compareTrees(source, dest)).toEqual([]);
  }, 120_000);
});
