// Interleavings between the collector and requests that a review found, each reproduced
// deterministically: a store wrapper runs a test's step right before a chosen key is written or
// deleted, or holds such a write until the test releases it. Each test failed before its fix.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reference } from '../../src/registry/names.js';
import * as paths from '../../src/registry/paths.js';
import { Registry } from '../../src/registry/registry.js';
import { acquireLease } from '../../src/retention/lease.js';
import { prune } from '../../src/retention/prune.js';
import { sweepUploadData } from '../../src/retention/upload-data.js';
import type { ObjectStore } from '../../src/storage/driver.js';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { collector, sleep } from './helpers.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const tag = (t: string): Reference => ({ kind: 'tag', tag: t });
const byDigest = (d: string): Reference => ({ kind: 'digest', digest: d });

/** A filesystem store that runs a hook before a given key is put or deleted (once). */
class HookedStore extends FilesystemStore {
  readonly beforePut = new Map<string, () => Promise<void>>();
  readonly beforeDelete = new Map<string, () => Promise<void>>();

  override async put(key: string, body: Parameters<ObjectStore['put']>[1], options?: Parameters<ObjectStore['put']>[2]) {
    await take(this.beforePut, key)?.();
    return super.put(key, body, options);
  }

  override async delete(key: string) {
    await take(this.beforeDelete, key)?.();
    return super.delete(key);
  }
}

function take<T>(map: Map<string, T>, key: string): T | undefined {
  const value = map.get(key);
  map.delete(key);
  return value;
}

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

async function setup(options: { sweepDelayMs?: number } = {}) {
  const root = await mkdtemp(path.join(tmpdir(), 'drreg-races-'));
  roots.push(root);
  const store = new HookedStore({ root, fsync: false });
  const registryOptions = { maxManifestBytes: 4 << 20, tagCacheTtlMs: 0, blobIndexCacheEntries: 1000, gcGraceMs: 0, gcSweepDelayMs: options.sweepDelayMs ?? 100 };
  const registry = new Registry(store, registryOptions);
  /** Another replica on the same store, with its own (empty) caches. */
  const replica = () => new Registry(store, registryOptions);
  return { store, registry, replica };
}

async function upload(registry: Registry, repo: string, bytes: Buffer): Promise<string> {
  const session = await registry.uploads.start(repo);
  await registry.uploads.append(repo, session.id, Readable.from([bytes]));
  return (await registry.uploads.complete(repo, session.id, sha256(bytes))).digest;
}

function imageManifest(config: Buffer, layer: Buffer, note: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      annotations: { note },
    }),
  );
}

async function image(registry: Registry, repo: string, note: string) {
  const config = Buffer.from(JSON.stringify({ os: 'linux', note }));
  const layer = randomBytes(3000);
  await upload(registry, repo, config);
  await upload(registry, repo, layer);
  return { config, layer, manifest: imageManifest(config, layer, note) };
}

describe('collector races', () => {
  it('a slow manifest PUT that deduplicated against bytes the collector removed stores them again', async () => {
    const { store, registry, replica } = await setup();
    // Two manifests over the same config and layer: only the second one's own bytes go.
    const { config, layer, manifest: kept } = await image(registry, 'a', 'keep');
    const manifest = imageManifest(config, layer, 'm');
    await registry.manifests.put('a', tag('keep'), kept, OCI_MANIFEST);
    await registry.manifests.put('a', byDigest(sha256(manifest)), manifest, OCI_MANIFEST);
    await registry.manifests.delete('a', byDigest(sha256(manifest))); // its bytes are garbage now
    // The push dedups against those bytes, then its link write stalls through a whole collection.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    store.beforePut.set(paths.manifestLinkKey('a', sha256(manifest)), () => gate);
    const push = registry.manifests.put('a', tag('latest'), manifest, OCI_MANIFEST);
    await sleep(20);
    const report = await collector(registry).run();
    expect(report.blobsSwept).toBeGreaterThan(0); // it did remove the manifest's bytes
    release();
    await push;
    const pulled = await replica().manifests.get('a', tag('latest'));
    expect(sha256(pulled.bytes)).toBe(sha256(manifest));
  });

  it('an index pushed while the collector removes its (so far unused) child keeps the child pullable', async () => {
    const { store, registry, replica } = await setup();
    const { manifest: child, layer } = await image(registry, 'a', 'child');
    await registry.manifests.put('a', byDigest(sha256(child)), child, OCI_MANIFEST);
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(child), size: child.length }] }),
    );
    await sleep(5);
    // Right before the collector deletes the child's link, the index that names it is pushed.
    store.beforeDelete.set(paths.manifestLinkKey('a', sha256(child)), async () => {
      await registry.manifests.put('a', tag('latest'), index, OCI_INDEX);
    });
    await collector(registry, { deleteUntagged: true }).run();
    const other = replica();
    expect(sha256((await other.manifests.get('a', byDigest(sha256(child)))).bytes)).toBe(sha256(child));
    expect(await other.blobs.claimInRepo('a', sha256(layer))).toBeDefined();
  });

  it('a pruned point restored while the collector removes it stays a whole recovery point', async () => {
    const { store, registry, replica } = await setup();
    const first = await image(registry, 'a', 'first');
    await registry.manifests.put('a', tag('latest'), first.manifest, OCI_MANIFEST);
    await sleep(5);
    await registry.manifests.put('a', tag('latest'), (await image(registry, 'a', 'second')).manifest, OCI_MANIFEST);
    await prune(registry, [{ repositories: '**', keepLast: 1 }]);
    await sleep(5);
    store.beforeDelete.set(paths.manifestLinkKey('a', sha256(first.manifest)), async () => {
      await registry.recoveryPoints.restore('a', 'latest', sha256(first.manifest));
    });
    await collector(registry).run();
    expect(sha256((await replica().manifests.get('a', tag('latest'))).bytes)).toBe(sha256(first.manifest));
    // The tag moves on; the restored point is a kept recovery point (keep-last 3 now).
    await sleep(5);
    await registry.manifests.put('a', tag('latest'), (await image(registry, 'a', 'third')).manifest, OCI_MANIFEST);
    await collector(registry).run();
    const other = replica();
    expect(sha256((await other.manifests.get('a', byDigest(sha256(first.manifest)))).bytes)).toBe(sha256(first.manifest));
    expect(await other.blobs.claimInRepo('a', sha256(first.layer))).toBeDefined();
  });

  it('an upload committed while the janitor expires its session keeps its data', async () => {
    const { store, registry } = await setup();
    const data = randomBytes(5000);
    const session = await registry.uploads.start('a');
    await registry.uploads.append('a', session.id, Readable.from([data]));
    await sleep(10);
    store.beforePut.set(paths.layerLinkKey('a', sha256(data)), async () => {
      expect(await registry.uploads.expire(1)).toBe(1); // another replica's janitor
      await sweepUploadData(store, { olderThanMs: Date.now() });
    });
    const index = await registry.uploads.complete('a', session.id, sha256(data));
    expect(await registry.blobs.partsPresent(index.parts)).toBe(true);
  });

  it('a collector that dies between deleting an index and deciding leaves it for the next run to put back', async () => {
    const { registry } = await setup();
    const layer = randomBytes(4000);
    await upload(registry, 'a', layer);
    // A request claims the blob (its dedup deleted its own upload), then the collector dies.
    const dying = collector(registry, {
      afterIndexDeleted: async (digest) => {
        await registry.blobs.claim(digest);
        throw new Error('collector killed');
      },
    });
    await expect(dying.run()).rejects.toThrow('collector killed');
    expect(await registry.blobs.read(sha256(layer))).toBeDefined(); // put back at once
    // A harder death: nothing after the index delete ran at all. The intent survives it.
    const index = (await registry.blobs.read(sha256(layer)))!;
    await registry.store.put(paths.sweepIntentKey(index.digest), Buffer.from(JSON.stringify(index)));
    await registry.store.delete(paths.blobIndexKey(index.digest));
    await collector(registry, { graceMs: 3600_000 }).run();
    expect(await registry.blobs.read(sha256(layer))).toEqual(index);
  });

  it('sweeps only behind its own tombstones, and stops if another collector took its lease', async () => {
    const { registry } = await setup();
    const layer = randomBytes(4000);
    await upload(registry, 'a', layer);
    await registry.blobs.unlink('a', sha256(layer));
    // Another (dead) run's tombstone is swept away and replaced; a live rival's would not count.
    await registry.tombstones.place(sha256(layer), 'someone-else');
    const report = await collector(registry, {
      beforeRemark: async () => {
        await registry.tombstones.place(sha256(layer), 'a-rival-run');
      },
    }).run();
    expect(report.blobsSwept).toBe(0);
    expect(await registry.blobs.read(sha256(layer))).toBeDefined();

    const lease = await acquireLease(registry.store, 'me', 300, 10);
    await registry.store.put(paths.GC_LEASE_KEY, Buffer.from(JSON.stringify({ owner: 'thief', expiresAt: new Date(Date.now() + 60_000).toISOString() })));
    await sleep(250);
    expect(lease.lost()).toBe(true);
    await lease.release(); // must not remove the thief's lease
    expect(await registry.store.stat(paths.GC_LEASE_KEY)).toBeDefined();
  });

  it('probing a digest in a repository that does not link it does not keep it alive', async () => {
    const { registry } = await setup();
    const layer = randomBytes(4000);
    await upload(registry, 'a', layer);
    await registry.blobs.unlink('a', sha256(layer));
    const report = await collector(registry, {
      beforeRemark: async () => {
        expect(await registry.blobs.claimInRepo('b', sha256(layer))).toBeUndefined();
      },
    }).run();
    expect(report.blobsSwept).toBe(1);
  });

  it('putting a swept index back never overwrites one a new commit wrote', async () => {
    const { registry } = await setup();
    const layer = randomBytes(4000);
    await upload(registry, 'a', layer);
    await registry.blobs.unlink('a', sha256(layer));
    let fresh: unknown;
    await collector(registry, {
      afterIndexDeleted: async () => {
        await upload(registry, 'b', layer); // claims (clears the tombstone), commits anew
        fresh = await registry.blobs.read(sha256(layer));
      },
    }).run();
    expect(fresh).toBeDefined();
    expect(await registry.blobs.read(sha256(layer))).toEqual(fresh);
    expect(await registry.blobs.partsPresent((fresh as { parts: Array<{ key: string; size: number }> }).parts)).toBe(true);
  });
});

// Pushes of one tag through two replicas finish in any order, and prune plans from what it read a
// moment before. Whatever the order, the manifest the tag ends up pointing at must stay a listed
// recovery point (found while reading a soak failure; each test failed before the fix).
describe('prune races', () => {
  const pointsOf = async (registry: Registry) => (await registry.recoveryPoints.list('a')).map((p) => ({ digest: p.digest, current: p.current }));

  it('a push whose pointer lands after a prune dropped its history entry keeps its point', async () => {
    const { store, registry, replica } = await setup();
    const slow = await image(registry, 'a', 'slow');
    const other = replica();
    // The slow push has written its history entry; before its pointer lands, two newer pushes
    // finish and a prune (keep last 1) drops the slow one's entry.
    store.beforePut.set(paths.currentTagKey('a', 'latest'), async () => {
      for (const note of ['newer', 'newest']) {
        await sleep(2);
        await other.manifests.put('a', tag('latest'), (await image(other, 'a', note)).manifest, OCI_MANIFEST);
      }
      expect((await prune(other, [{ repositories: '**', keepLast: 1 }])).droppedPoints).toBe(2);
    });
    await registry.manifests.put('a', tag('latest'), slow.manifest, OCI_MANIFEST);

    expect((await other.tags.current('a', 'latest'))?.digest).toBe(sha256(slow.manifest));
    const points = await pointsOf(other);
    expect(points).toContainEqual({ digest: sha256(slow.manifest), current: true });
    expect((await other.recoveryPoints.listPruned('a')).map((p) => p.digest)).not.toContain(sha256(slow.manifest));
  });

  it('a prune that deletes the entry right after the pointer landed puts it back', async () => {
    const { store, registry, replica } = await setup();
    const old = await image(registry, 'a', 'old');
    await registry.manifests.put('a', tag('latest'), old.manifest, OCI_MANIFEST);
    await sleep(2);
    const pushed = await image(registry, 'a', 'pushed');
    const other = replica();
    // The push's history entry is written; prune plans now (the pointer still says "old", so the
    // newer entry is not current, and a policy keeping no tag drops it) and stalls before its
    // delete until the push has written its pointer and checked its entry.
    let pushDone!: () => void;
    const pushed$ = new Promise<void>((r) => (pushDone = r));
    let planned!: () => void;
    const planned$ = new Promise<void>((r) => (planned = r));
    let pruning: Promise<unknown> | undefined;
    store.beforePut.set(paths.currentTagKey('a', 'latest'), async () => {
      const [entry] = (await other.recoveryPoints.list('a')).filter((p) => p.digest === sha256(pushed.manifest));
      store.beforeDelete.set(entry!.key, async () => {
        planned();
        await pushed$;
      });
      pruning = prune(other, [{ repositories: '**', keepTags: ['never'] }]);
      await planned$;
    });
    await registry.manifests.put('a', tag('latest'), pushed.manifest, OCI_MANIFEST);
    pushDone();
    await pruning;

    expect(await pointsOf(other)).toContainEqual({ digest: sha256(pushed.manifest), current: true });
    expect(await other.recoveryPoints.listPruned('a')).toEqual([]); // "old" was current when planned
  });
});
