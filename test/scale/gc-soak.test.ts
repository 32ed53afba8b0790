// Concurrency soak of retention and the online collector: several clients push images that share a
// base layer through two registry processes on one store (a directory, or a bucket on Swift),
// re-using older layers by HEAD, by re-upload (dedup at commit) and by cross-repository mount,
// while prune (keep last 2) and the collector run in a loop with test-sized graces. Afterwards:
// every push succeeded, every kept recovery point pulls completely with the right digests, no
// blob is partial or lost, and nothing unreachable remains (blobs, manifest links, layer links,
// upload data, tombstones). Bounded: 25 s of pushing on each store (then the collector catches up)
// (DRREG_SOAK_SECONDS sets both; DRREG_SOAK_ONLY=file or s3 runs one).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as paths from '../../src/registry/paths.js';
import { Registry } from '../../src/registry/registry.js';
import { Collector, type GcReport } from '../../src/retention/gc.js';
import { prune } from '../../src/retention/prune.js';
import type { ObjectStore } from '../../src/storage/driver.js';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { S3Store } from '../../src/storage/s3.js';
import { startRegistryProcess, type RegistryProcess } from '../helpers/process.js';
import { startTestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { OCI_MANIFEST, assertNoPartialBlobs, pushBlob, putManifest, unreferencedParts } from '../http/client.js';
import { blobExists, collector, pushPoint, sleep } from '../retention/helpers.js';

const PUSHERS = 4;
const REPOS = ['soak/alpha', 'soak/beta', 'soak/gamma'];
const TAGS = ['latest', 'nightly'];
const SWEEP_DELAY_MS = 300;
const KEEP_LAST = 2;

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Backend {
  name: string;
  /**
   * gc.grace: what the registry promises a client between its HEAD of a blob and the manifest
   * that relies on it (links are refreshed at half of it). Set above the longest gap measured
   * here: under 1 s on the filesystem, up to 7.5 s on Swift on two busy cores.
   */
  graceMs: number;
  /** Pushes a run must at least make to count (Swift on two cores is about ten times slower). */
  minPushes: number;
  soakMs: number;
  /** Settings for the registry processes, a store for the collector, and a cleanup. */
  make(): Promise<{ env: Record<string, string>; store: ObjectStore; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'filesystem',
    graceMs: 2000,
    minPushes: 100,
    soakMs: 25_000,
    async make() {
      const root = await mkdtemp(path.join(tmpdir(), 'drreg-soak-'));
      return {
        env: { DRREG_STORAGE_FILESYSTEM_ROOT: root, DRREG_STORAGE_FILESYSTEM_FSYNC: 'false' },
        store: new FilesystemStore({ root, fsync: false }),
        cleanup: () => rm(root, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 's3 on Swift',
    graceMs: 10_000,
    minPushes: 8, // a busy 2-core machine manages 12-40 on Swift in 25 s
    soakMs: 25_000,
    async make() {
      const s3 = swiftOptions();
      const store = new S3Store(s3);
      await store.check(); // creates the bucket
      return {
        env: {
          DRREG_STORAGE_DRIVER: 's3',
          DRREG_STORAGE_S3_ENDPOINT: s3.endpoint,
          DRREG_STORAGE_S3_BUCKET: s3.bucket,
          DRREG_STORAGE_S3_ACCESSKEY: s3.accessKey,
          DRREG_STORAGE_S3_SECRETKEY: s3.secretKey,
        },
        store,
        cleanup: () => removeBucket(s3),
      };
    },
  },
];

/** A successful push: which blobs the image has, and the bytes of each (to check pulls). */
interface Pushed {
  repo: string;
  tag: string;
  digest: string;
  blobs: string[];
}

interface PushFailure {
  repo: string;
  tag: string;
  /** From the first HEAD to the failure: beyond gc.grace / 2 a HEAD-skipped blob is not promised. */
  gapMs: number;
  step: string;
  status: number;
  body: string;
}

/** A blob some earlier push used, and where: what later pushes re-use. */
interface KnownBlob {
  bytes: Buffer;
  digest: string;
  repo: string;
}

class PushError extends Error {
  gapMs = 0;
  constructor(
    readonly step: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${step}: ${status} ${body}`);
  }
}

describe.each(backends.filter((b) => !process.env.DRREG_SOAK_ONLY || b.name.startsWith(process.env.DRREG_SOAK_ONLY)))('gc soak on $name: pushes through two replicas while prune and GC loop', (backend) => {
  let made: Awaited<ReturnType<Backend['make']>>;
  let replicas: RegistryProcess[] = [];
  let registry: Registry;

  beforeAll(async () => {
    made = await backend.make();
    const env = {
      ...made.env,
      DRREG_GC_GRACE: `${backend.graceMs}ms`,
      DRREG_GC_SWEEPDELAY: `${SWEEP_DELAY_MS}ms`,
      DRREG_CACHE_TAGTTL: '200ms',
    };
    replicas = await Promise.all([startRegistryProcess(env), startRegistryProcess(env)]);
    // The collector and prune run here, a third process on the same store, as a scheduler would.
    registry = new Registry(made.store, {
      maxManifestBytes: 4 * 1024 * 1024,
      tagCacheTtlMs: 0,
      blobIndexCacheEntries: 10_000,
      gcGraceMs: backend.graceMs,
      gcSweepDelayMs: SWEEP_DELAY_MS,
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await made?.store.close?.();
    await made?.cleanup();
  });

  it(
    'loses no blob, keeps every kept point whole, and leaves nothing unreachable',
    async () => {
      const base = randomBytes(32 * 1024);
      const known: KnownBlob[] = [];
      const pushed: Pushed[] = [];
      const failures: PushFailure[] = [];
      const stats = { headSkips: 0, mounts: 0, reuploads: 0, oldLayers: 0, maxHeadToPutMs: 0 };
      const soakMs = process.env.DRREG_SOAK_SECONDS ? Number(process.env.DRREG_SOAK_SECONDS) * 1000 : backend.soakMs;
      const deadline = Date.now() + soakMs;

      async function pushImage(client: number, n: number) {
        const url = replicas[(client + n) % replicas.length]!.url;
        const repo = REPOS[(client + n) % REPOS.length]!;
        const tag = TAGS[n % TAGS.length]!;
        const unique = randomBytes(1000 + Math.floor(Math.random() * 4000));
        const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', client, n, nonce: randomBytes(8).toString('hex') }));
        const layers: KnownBlob[] = [{ bytes: base, digest: sha256(base), repo }];
        // Often an older layer too: one of a point that may be pruned, tombstoned or swept by now.
        if (known.length > 0 && Math.random() < 0.5) {
          layers.push(known[Math.floor(Math.random() * known.length)]!);
          stats.oldLayers++;
        }
        layers.push({ bytes: unique, digest: sha256(unique), repo });

        // As docker does: HEAD every blob first, then send what is missing, then the manifest.
        const headAt = Date.now();
        try {
          await send(url, repo, tag, config, layers, headAt);
        } catch (err) {
          if (err instanceof PushError) err.gapMs = Date.now() - headAt;
          throw err;
        }
      }

      async function send(url: string, repo: string, tag: string, config: Buffer, layers: KnownBlob[], headAt: number) {
        const blobs = [{ bytes: config, digest: sha256(config), repo }, ...layers];
        const present = await Promise.all(blobs.map(async (b) => (await fetch(`${url}/v2/${repo}/blobs/${b.digest}`, { method: 'HEAD' })).status === 200));
        for (const [i, b] of blobs.entries()) {
          if (present[i] && Math.random() < 0.7) {
            stats.headSkips++;
            continue;
          }
          if (b.repo !== repo && Math.random() < 0.5) {
            // Cross-repository mount from where an earlier push put it; upload if it is gone there.
            const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?mount=${b.digest}&from=${b.repo}`, { method: 'POST' });
            await r.arrayBuffer();
            if (r.status === 201) {
              stats.mounts++;
              continue;
            }
            if (r.status !== 202) throw new PushError('mount', r.status, '');
            const target = new URL(r.headers.get('location')!, url);
            target.searchParams.set('digest', b.digest);
            const put = await fetch(target, { method: 'PUT', body: b.bytes, headers: { 'Content-Type': 'application/octet-stream' } });
            if (put.status !== 201) throw new PushError('upload after mount', put.status, await put.text());
            continue;
          }
          if (present[i]) stats.reuploads++; // the store has it: this upload commits as a dedup
          const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.bytes });
          if (r.status !== 201) throw new PushError('upload', r.status, await r.text());
        }
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
            layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.bytes.length })),
          }),
        );
        const put = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
        stats.maxHeadToPutMs = Math.max(stats.maxHeadToPutMs, Date.now() - headAt);
        if (put.status !== 201) throw new PushError('manifest', put.status, await put.text());
        pushed.push({ repo, tag, digest: sha256(manifest), blobs: blobs.map((b) => b.digest) });
        known.push(layers.at(-1)!); // its own new layer
      }

      async function pusher(client: number) {
        for (let n = 0; Date.now() < deadline; n++) {
          try {
            await pushImage(client, n);
          } catch (err) {
            if (!(err instanceof PushError)) throw err;
            const [repo, tag] = [REPOS[(client + n) % REPOS.length]!, TAGS[n % TAGS.length]!];
            failures.push({ repo, tag, gapMs: err.gapMs, step: err.step, status: err.status, body: err.body });
          }
        }
      }

      const reports: GcReport[] = [];
      let pruned = 0;
      const policies = [{ repositories: 'soak/*', keepLast: KEEP_LAST }];
      const gc = () => new Collector(registry, { graceMs: backend.graceMs, sweepDelayMs: SWEEP_DELAY_MS, retentionGraceMs: 0, deleteUntagged: false });
      async function maintenance() {
        while (Date.now() < deadline) {
          pruned += (await prune(registry, policies)).droppedPoints;
          reports.push(await gc().run());
        }
      }

      await Promise.all([...Array.from({ length: PUSHERS }, (_, i) => pusher(i)), maintenance()]);

      // Quiet now: no push is in flight, so one last prune and a collection with no grace at all.
      pruned += (await prune(registry, policies)).droppedPoints;
      // The store knows prune times to its resolution (Swift rounds them up to the second), and
      // a pruned point stays restorable until its grace has surely passed: wait that out.
      await sleep(made.store.timeResolutionMs ?? 0);
      const final = await new Collector(registry, { graceMs: 0, sweepDelayMs: SWEEP_DELAY_MS, retentionGraceMs: 0, deleteUntagged: false }).run();
      reports.push(final);
      const total = (k: keyof GcReport) => reports.reduce((n, r) => n + (r[k] as number), 0);
      console.log(
        `${backend.name}: final run: ${final.manifestsRemoved} manifests removed, ${final.blobsSwept} blobs swept, ${final.blobsLive} live`,
      );
      console.log(
        `${backend.name}: ${pushed.length} pushes (${failures.length} failed), ${reports.length} GC runs, ${pruned} points pruned, ` +
          `${total('manifestsRemoved')} manifests removed, ${total('blobsSwept')} blobs swept, ${total('blobsRescued')} rescued, ` +
          `${total('uploadPartsSwept')} upload parts swept; ${JSON.stringify(stats)}`,
      );

      // Every push succeeded, and the run did real work on both sides.
      expect(failures, JSON.stringify(failures.slice(0, 5))).toEqual([]);
      expect(pushed.length).toBeGreaterThanOrEqual(backend.minPushes);
      expect(stats.headSkips + stats.mounts + stats.reuploads).toBeGreaterThan(0);
      expect(reports.length).toBeGreaterThanOrEqual(3);
      expect(total('manifestsRemoved')).toBeGreaterThan(0);
      expect(total('blobsSwept')).toBeGreaterThan(0);

      // Soft from here: a failure shows every broken point and every leftover at once.
      // (a) Every kept recovery point is one a client pushed, and pulls completely through each replica.
      const byDigest = new Map(pushed.map((p) => [`${p.repo}@${p.digest}`, p]));
      const reachable = new Set<string>();
      const keptManifests = new Set<string>();
      let keptPoints = 0;
      for (const repo of await registry.repositories.list()) {
        const points = await registry.recoveryPoints.list(repo);
        for (const tag of TAGS) {
          const series = points.filter((p) => p.tag === tag);
          if (!pushed.some((p) => p.repo === repo && p.tag === tag)) continue;
          expect.soft(series.length, `${repo}:${tag}`).toBeGreaterThanOrEqual(1);
          expect.soft(series.length, `${repo}:${tag}`).toBeLessThanOrEqual(KEEP_LAST + 1); // + the current one
        }
        for (const point of points) {
          const image = byDigest.get(`${repo}@${point.digest}`);
          expect.soft(image, `kept point ${repo}@${point.digest} is a push that succeeded`).toBeDefined();
          keptPoints++;
          keptManifests.add(`${repo}@${point.digest}`);
          reachable.add(point.digest);
          for (const replica of replicas) await pullsWhole(replica.url, repo, image!);
          for (const b of image!.blobs) reachable.add(b);
        }
        for (const t of await registry.tags.list(repo)) {
          expect.soft(byDigest.has(`${repo}@${t.digest}`), `${repo}:${t.tag}`).toBe(true);
          // What the tag points at is its current recovery point, whatever order pushes and prunes ran in.
          expect.soft(points.some((p) => p.current && p.tag === t.tag && p.digest === t.digest), `${repo}:${t.tag} is a listed point`).toBe(true);
        }
      }
      expect.soft(keptPoints).toBeGreaterThan(0);

      // (b) No blob is partial or lost: every index's parts exist and hash to its digest.
      expect.soft(await assertNoPartialBlobs(made.store)).toBeGreaterThan(0);

      // (c) Nothing unreachable remains: no blob, manifest link or layer link outside the kept
      // points, no stale upload data, no upload session, no tombstone.
      const leftovers: string[] = [];
      for await (const obj of made.store.list(paths.BLOBS_PREFIX)) {
        const digest = paths.digestFromBlobIndexKey(obj.key);
        if (digest && !reachable.has(digest)) leftovers.push(`blob ${digest}`);
      }
      for (const repo of await registry.repositories.list()) {
        for await (const obj of made.store.list(paths.manifestLinksPrefix(repo))) {
          const digest = paths.digestFromLinkKey(obj.key);
          if (digest && !keptManifests.has(`${repo}@${digest}`)) leftovers.push(`manifest link ${repo}@${digest}`);
        }
        for await (const obj of made.store.list(paths.layerLinksPrefix(repo))) {
          const digest = paths.digestFromLinkKey(obj.key);
          if (digest && !reachable.has(digest)) leftovers.push(`layer link ${repo}@${digest}`);
        }
      }
      for await (const obj of made.store.list(paths.TOMBSTONES_PREFIX)) leftovers.push(`tombstone ${obj.key}`);
      for await (const obj of made.store.list(paths.UPLOADS_PREFIX)) leftovers.push(`upload session ${obj.key}`);
      leftovers.push(...(await unreferencedParts(made.store)).map((k) => `upload data ${k}`));
      expect.soft(leftovers, `${leftovers.length} unreachable objects remain`).toEqual([]);
    },
    300_000,
  );
});

/** Pulls a manifest by digest and every blob it names through `url`, checking every digest. */
async function pullsWhole(url: string, repo: string, image: Pushed): Promise<void> {
  const m = await fetch(`${url}/v2/${repo}/manifests/${image.digest}`, { headers: { Accept: OCI_MANIFEST } });
  expect.soft(m.status, `manifest ${repo}@${image.digest}`).toBe(200);
  const bytes = Buffer.from(await m.arrayBuffer());
  expect.soft(sha256(bytes)).toBe(image.digest);
  const parsed = JSON.parse(bytes.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  expect.soft([parsed.config.digest, ...parsed.layers.map((l) => l.digest)]).toEqual(image.blobs);
  for (const digest of image.blobs) {
    const b = await fetch(`${url}/v2/${repo}/blobs/${digest}`);
    expect.soft(b.status, `blob ${digest} of ${repo}@${image.digest}`).toBe(200);
    expect.soft(sha256(Buffer.from(await b.arrayBuffer())), `blob ${digest} of ${repo}@${image.digest}`).toBe(digest);
  }
}

// The soak's leftovers, reduced to one deterministic case: a point pruned while its manifest link
// is younger than gc.grace (retention.grace shorter than gc.grace, or prune soon after a push).
describe('a pruned point whose push is younger than gc.grace', () => {
  it('is collected by a run after the grace, not kept for ever as an untagged manifest', async () => {
    const running = await startTestRegistry();
    try {
      const base = randomBytes(2000);
      const old = await pushPoint(running.url, 'dr/app', 'latest', base);
      const kept = await pushPoint(running.url, 'dr/app', 'latest', base);
      await prune(running.registry, [{ repositories: '**', keepLast: 1 }]);
      // retention.grace 0: the pruned point is no longer restorable, but its manifest link is
      // within gc.grace, so this run must leave it. The grace is far longer than the push, prune
      // and run can take on any machine (it was 1 s, which a busy machine outran: 1 removed).
      let newest = 0; // the newest object of the repository: links, tags, the prune's records
      for await (const obj of running.store.list(paths.repositoryPrefix('dr/app'))) newest = Math.max(newest, obj.modified.getTime());
      const first = await collector(running.registry, { graceMs: 10 * 60_000 }).run();
      expect(first.manifestsRemoved).toBe(0);
      expect(await blobExists(running.registry, old.digest)).toBe(true);
      // Then a run whose grace everything the push and the prune wrote is surely older than (by
      // the store's times, to its resolution): waited for as a condition, not a fixed sleep.
      const graceMs = 200;
      const resolution = running.store.timeResolutionMs ?? 1000;
      while (Date.now() - newest <= graceMs + resolution) await sleep(20);
      const second = await collector(running.registry, { graceMs }).run();
      expect(second.manifestsRemoved, 'the pruned point is collected once the gc grace has passed').toBe(1);
      expect(await blobExists(running.registry, old.digest)).toBe(false);
      expect(await blobExists(running.registry, old.blobs[2]!)).toBe(false);
      expect(await blobExists(running.registry, kept.digest)).toBe(true);
    } finally {
      await running.stop();
    }
  });
});

// The soak's failed pulls, reduced: a replica that cached a blob's index before the collector
// removed the blob serves the stale index after the blob was pushed again (with new parts).
describe('a blob collected and pushed again', () => {
  it('pulls through a replica that had cached its earlier index', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'drreg-recache-'));
    const a = await startTestRegistry({ root });
    const b = await startTestRegistry({ root });
    try {
      const layer = randomBytes(3000);
      const image = async (note: string) => {
        const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', note }));
        for (const blob of [layer, config]) await pushBlob(a.url, 'dr/app', blob);
        const body = {
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
        };
        const put = await putManifest(a.url, 'dr/app', 'latest', body, OCI_MANIFEST);
        expect(put.res.status).toBe(201);
      };
      await image('first');
      expect((await fetch(`${b.url}/v2/dr/app/blobs/${sha256(layer)}`)).status).toBe(200); // b caches the index
      // A newer point without that layer; the old point is pruned and collected with the layer.
      await pushPoint(a.url, 'dr/app', 'latest', randomBytes(1000));
      await prune(a.registry, [{ repositories: '**', keepLast: 1 }]);
      await sleep(5);
      await collector(a.registry).run();
      expect(await blobExists(a.registry, sha256(layer))).toBe(false);
      // The layer comes back in a new image (a system rolled back): new upload parts.
      await image('again');
      const pulled = await fetch(`${b.url}/v2/dr/app/blobs/${sha256(layer)}`);
      expect(pulled.status, 'the other replica serves the blob as stored now').toBe(200);
      expect(sha256(Buffer.from(await pulled.arrayBuffer()))).toBe(sha256(layer));
    } finally {
      await a.stop();
      await b.stop();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('is still marked through its manifest by a collector on a replica that had cached the manifest', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'drreg-recache-'));
    const a = await startTestRegistry({ root });
    const b = await startTestRegistry({ root });
    try {
      const layer = randomBytes(3000);
      const config = Buffer.from('{"architecture":"amd64","os":"linux","note":"rollback"}');
      const body = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      };
      const push = async () => {
        for (const blob of [layer, config]) await pushBlob(a.url, 'dr/app', blob);
        const put = await putManifest(a.url, 'dr/app', 'latest', body, OCI_MANIFEST);
        expect(put.res.status).toBe(201);
        return put.digest;
      };
      const digest = await push();
      // b serves the manifest once: it caches the manifest blob's index.
      expect((await fetch(`${b.url}/v2/dr/app/manifests/${digest}`, { headers: { Accept: OCI_MANIFEST } })).status).toBe(200);
      // The system moves on; the old point is pruned and collected (by a).
      await pushPoint(a.url, 'dr/app', 'latest', randomBytes(1000));
      await prune(a.registry, [{ repositories: '**', keepLast: 1 }]);
      await sleep(5);
      await collector(a.registry).run();
      expect(await blobExists(a.registry, digest)).toBe(false);
      // Then it rolls back: the very same image is pushed again and is the current point.
      expect(await push()).toBe(digest);
      await sleep(5);
      // This time b's collector runs (the lease went to the other replica).
      await collector(b.registry).run();
      const pulled = await fetch(`${a.url}/v2/dr/app/blobs/${sha256(layer)}`);
      expect(pulled.status, 'the current point keeps its layer').toBe(200);
      expect((await fetch(`${a.url}/v2/dr/app/blobs/${sha256(config)}`)).status, 'and its config').toBe(200);
    } finally {
      await a.stop();
      await b.stop();
      await rm(root, { recursive: true, force: true });
    }
  });
});
