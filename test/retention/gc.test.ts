// The online collector on a real registry: what it removes, what it must keep (recovery points,
// pins, restorable pruned points, shared layers, pushes in progress), and the interleavings with
// concurrent requests that the tombstone protocol exists for, each reproduced deterministically.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as paths from '../../src/registry/paths.js';
import { LeaseBusyError, acquireLease } from '../../src/retention/lease.js';
import { prune } from '../../src/retention/prune.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { encryptedFactory, filesystemFactory, storeFactories } from '../helpers/stores.js';
import { OCI_INDEX, OCI_MANIFEST, assertNoPartialBlobs, pushBlob, putManifest, sha256, unreferencedParts } from '../http/client.js';
import { blobExists, collector, pullsCompletely, pushPoint, sleep } from './helpers.js';

describe.each([...storeFactories(), encryptedFactory(filesystemFactory())])('garbage collection on $name', (factory) => {
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;
  const base = randomBytes(50_000);

  beforeEach(async () => {
    const made = await factory.make();
    cleanup = made.cleanup;
    registry = await startTestRegistry({ store: made.store });
  });
  afterEach(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  it('frees what pruned points alone used, keeps the shared base and every kept point whole', async () => {
    const a = [];
    for (let i = 0; i < 4; i++) a.push(await pushPoint(registry.url, 'site/a', 'latest', base));
    const b = await pushPoint(registry.url, 'site/b', 'latest', base);
    const pruned = await prune(registry.registry, [{ repositories: 'site/*', keepLast: 1 }]);
    expect(pruned.droppedPoints).toBe(3);
    // Past the store's time resolution, so a zero grace really makes everything "old".
    await sleep(registry.store.timeResolutionMs! + 50);

    const report = await collector(registry.registry).run();
    const dropped = a.slice(0, 3);
    expect(report.manifestsRemoved).toBe(3);
    expect(report.blobsSwept).toBe(3 * 3); // manifest, config and unique layer of each
    expect(report.bytesFreed).toBe(dropped.reduce((n, p) => n + p.ownBytes, 0));
    for (const p of dropped) {
      expect(await blobExists(registry.registry, p.digest)).toBe(false);
      expect(await blobExists(registry.registry, p.blobs[2]!)).toBe(false);
      expect((await fetch(`${registry.url}/v2/site/a/manifests/${p.digest}`, { method: 'HEAD' })).status).toBe(404);
    }
    await pullsCompletely(registry.url, 'site/a', a[3]!);
    await pullsCompletely(registry.url, 'site/b', b);
    // Two kept images of three own blobs each, and the base once.
    expect(await assertNoPartialBlobs(registry.store)).toBe(7);
    expect(await unreferencedParts(registry.store)).toEqual([]);
    expect(await tombstones(registry)).toEqual([]);

    // A second run finds nothing more.
    const again = await collector(registry.registry).run();
    expect(again.blobsSwept + again.manifestsRemoved + again.layerLinksRemoved).toBe(0);
  }, 90_000); // Swift on two busy cores: ~20 s
});

describe('garbage collection', () => {
  let registry: TestRegistry;
  const base = randomBytes(50_000);

  beforeEach(async () => {
    registry = await startTestRegistry();
  });
  afterEach(() => registry?.stop());

  it('keeps pruned points restorable for the retention grace, then collects them', async () => {
    const old = await pushPoint(registry.url, 'dr/app', 'latest', base);
    const now = await pushPoint(registry.url, 'dr/app', 'latest', base);
    await prune(registry.registry, [{ repositories: '**', keepLast: 1 }]);
    const within = await collector(registry.registry, { retentionGraceMs: 3600_000 }).run();
    expect(within.blobsSwept).toBe(0);
    expect(within.manifestsRemoved).toBe(0);
    // Restorable: the tag goes back to the pruned point.
    await registry.registry.recoveryPoints.restore('dr/app', 'latest', old.digest);
    await pullsCompletely(registry.url, 'dr/app', old);
    await registry.registry.recoveryPoints.restore('dr/app', 'latest', now.digest);
    await prune(registry.registry, [{ repositories: '**', keepLast: 1 }]);
    const after = await collector(registry.registry).run();
    expect(after.manifestsRemoved).toBe(1);
    expect(await blobExists(registry.registry, old.digest)).toBe(false);
    await pullsCompletely(registry.url, 'dr/app', now);
  });

  it('never collects pinned points, untagged manifests (by default) or pushes within the grace', async () => {
    const pinned = await pushPoint(registry.url, 'dr/app', 'latest', base);
    const later = await pushPoint(registry.url, 'dr/app', 'latest', base);
    await registry.registry.recoveryPoints.pin('dr/app', pinned.digest);
    const untaggedLayer = randomBytes(3000);
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    await pushBlob(registry.url, 'dr/app', untaggedLayer);
    await pushBlob(registry.url, 'dr/app', config);
    const untaggedBody = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(untaggedLayer), size: untaggedLayer.length }],
    };
    const untagged = await putManifest(registry.url, 'dr/app', sha256(JSON.stringify(untaggedBody)), untaggedBody, OCI_MANIFEST);
    expect(untagged.res.status).toBe(201);
    await prune(registry.registry, [{ repositories: '**', keepLast: 1 }]);
    // A layer uploaded just now, whose manifest is not pushed yet.
    const inFlight = await pushBlob(registry.url, 'dr/app', randomBytes(4000));

    const kept = await collector(registry.registry, { graceMs: 3600_000 }).run();
    expect(kept.blobsSwept).toBe(0);
    expect(await blobExists(registry.registry, inFlight)).toBe(true);

    const report = await collector(registry.registry).run();
    expect(report.blobsSwept).toBe(1); // only the in-flight layer, now past a zero grace
    await pullsCompletely(registry.url, 'dr/app', pinned);
    await pullsCompletely(registry.url, 'dr/app', later);
    expect(await blobExists(registry.registry, untagged.digest)).toBe(true);

    const strict = await collector(registry.registry, { deleteUntagged: true }).run();
    expect(strict.manifestsRemoved).toBe(1);
    expect(await blobExists(registry.registry, untagged.digest)).toBe(false);
    expect(await blobExists(registry.registry, sha256(untaggedLayer))).toBe(false);
  });

  it('collects index children and referrers with their pruned subject, and keeps those of kept points', async () => {
    const child = await pushPoint(registry.url, 'multi/app', undefined, base);
    const index = (n: number) => ({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.manifest.length }],
      annotations: { n: String(n) },
    });
    const first = await putManifest(registry.url, 'multi/app', 'v', index(1), OCI_INDEX);
    const signature = await pushReferrer(first.digest, first.bytes.length, 'first');
    await sleep(5);
    const keptPoint = await pushPoint(registry.url, 'multi/app', 'v', base);
    const keptSignature = await pushReferrer(keptPoint.digest, keptPoint.manifest.length, 'kept');
    await prune(registry.registry, [{ repositories: 'multi/*', keepLast: 1, keepTags: [] }]);

    const report = await collector(registry.registry).run();
    for (const gone of [first.digest, signature, child.digest, child.blobs[2]!]) expect(await blobExists(registry.registry, gone)).toBe(false);
    expect(await blobExists(registry.registry, keptSignature)).toBe(true);
    const referrers = await (await fetch(`${registry.url}/v2/multi/app/referrers/${keptPoint.digest}`)).json();
    expect((referrers as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([keptSignature]);
    expect(report.manifestsRemoved).toBe(3);
    await pullsCompletely(registry.url, 'multi/app', keptPoint);
  });

  it('spares a blob re-uploaded while its tombstone stands: the push that follows succeeds', async () => {
    const layer = randomBytes(6000);
    await pushBlob(registry.url, 'dr/app', layer); // an abandoned push: never referenced
    const c = collector(registry.registry, {
      beforeRemark: async () => {
        expect(await registry.store.stat(paths.tombstoneKey(sha256(layer)))).toBeDefined();
        // Another system pushes an image with that layer now: upload dedups, manifest lands.
        const image = await pushImageWith(layer);
        expect(image.res.status).toBe(201);
      },
    });
    const report = await c.run();
    expect(report.blobsSwept).toBe(0);
    expect(report.blobsRescued).toBeGreaterThanOrEqual(1);
    expect(await blobExists(registry.registry, sha256(layer))).toBe(true);
    expect(await assertNoPartialBlobs(registry.store)).toBeGreaterThan(0);
  });

  it('spares a blob whose tombstone a request cleared, even though the request linked nothing', async () => {
    const layer = randomBytes(6000);
    await pushBlob(registry.url, 'dr/other', layer);
    await registry.registry.blobs.unlink('dr/other', sha256(layer));
    const report = await collector(registry.registry, {
      beforeRemark: async () => {
        // A HEAD-like use: clears the tombstone, writes nothing the re-mark could see.
        expect(await registry.registry.blobs.claim(sha256(layer))).toBeDefined();
      },
    }).run();
    expect(report.blobsSwept).toBe(0);
    expect(await blobExists(registry.registry, sha256(layer))).toBe(true);
  });

  it('puts a swept index back when a request claims the blob between the sweep\'s two checks', async () => {
    const layer = randomBytes(6000);
    await pushBlob(registry.url, 'dr/app', layer);
    let claimedMidSweep: unknown = 'not called';
    const report = await collector(registry.registry, {
      afterIndexDeleted: async (digest) => {
        // The request saw the tombstone (and clears it) but finds the index gone: it would
        // upload again. The collector must notice the cleared tombstone and restore the index.
        claimedMidSweep = await registry.registry.blobs.claim(digest);
      },
    }).run();
    expect(claimedMidSweep).toBeUndefined();
    expect(report.blobsSwept).toBe(0);
    expect(report.blobsRescued).toBe(1);
    expect(await blobExists(registry.registry, sha256(layer))).toBe(true);
    expect(await assertNoPartialBlobs(registry.store)).toBe(1);
  });

  it('a HEAD of a tombstoned blob in a repository that links it saves the blob', async () => {
    const layer = randomBytes(6000);
    await pushBlob(registry.url, 'dr/app', layer);
    const report = await collector(registry.registry, {
      graceMs: 0,
      beforeRemark: async () => {
        // The mark removed the old unused link, so the HEAD here is in a repository that still
        // links it: link it back the way a mount would, then HEAD.
        await registry.registry.blobs.link('dr/app', sha256(layer));
        expect((await fetch(`${registry.url}/v2/dr/app/blobs/${sha256(layer)}`, { method: 'HEAD' })).status).toBe(200);
      },
    }).run();
    expect(report.blobsSwept).toBe(0);
    expect(await blobExists(registry.registry, sha256(layer))).toBe(true);
  });

  it('removes upload data nothing refers to, and keeps the data of a live upload session', async () => {
    const orphan = paths.uploadPartKey('0000-orphan', 0, 'dead');
    await registry.store.put(orphan, randomBytes(100));
    const start = await fetch(`${registry.url}/v2/dr/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const chunk = randomBytes(700);
    expect((await fetch(`${registry.url}${location}`, { method: 'PATCH', body: chunk })).status).toBe(202);
    const report = await collector(registry.registry).run();
    expect(report.uploadPartsSwept).toBe(1);
    expect(report.uploadBytesFreed).toBe(100);
    expect(await registry.store.stat(orphan)).toBeUndefined();
    const done = await fetch(`${registry.url}${location}?digest=${sha256(chunk)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
  });

  it('runs one collector at a time, and a dry run changes nothing', async () => {
    const lease = await acquireLease(registry.store, 'someone-else', 60_000, 10);
    await expect(collector(registry.registry).run()).rejects.toBeInstanceOf(LeaseBusyError);
    await lease.release();

    const old = await pushPoint(registry.url, 'dr/app', 'latest', base);
    await pushPoint(registry.url, 'dr/app', 'latest', base);
    await prune(registry.registry, [{ repositories: '**', keepLast: 1 }]);
    const dry = await collector(registry.registry, { dryRun: true }).run();
    expect(dry.manifestsRemoved).toBe(1);
    expect(dry.blobsSwept).toBe(3);
    expect(await blobExists(registry.registry, old.digest)).toBe(true);
    expect(await tombstones(registry)).toEqual([]);
    const real = await collector(registry.registry).run();
    expect(real.blobsSwept).toBe(3);
    expect(real.bytesFreed).toBe(dry.bytesFreed);
  });

  async function pushReferrer(subject: string, size: number, note: string): Promise<string> {
    const empty = Buffer.from('{}');
    await pushBlob(registry.url, 'multi/app', empty);
    const body = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 }],
      subject: { mediaType: OCI_MANIFEST, digest: subject, size },
      annotations: { note },
    };
    const pushed = await putManifest(registry.url, 'multi/app', sha256(JSON.stringify(body)), body, OCI_MANIFEST);
    expect(pushed.res.status).toBe(201);
    return pushed.digest;
  }

  async function pushImageWith(layer: Buffer) {
    await pushBlob(registry.url, 'dr/second', layer);
    const config = Buffer.from('{"architecture":"amd64","os":"linux","second":true}');
    await pushBlob(registry.url, 'dr/second', config);
    return putManifest(
      registry.url,
      'dr/second',
      'latest',
      {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      },
      OCI_MANIFEST,
    );
  }
});

async function tombstones(registry: TestRegistry): Promise<string[]> {
  const keys: string[] = [];
  for await (const obj of registry.store.list(paths.TOMBSTONES_PREFIX)) keys.push(obj.key);
  return keys;
}
