// Garbage collection throughput: fills a store with many small blobs in images (recovery points of
// several repositories), prunes most points, runs the online collector once and prints how fast
// it sweeps, phase by phase. On S3 (Swift) and on the filesystem, side by side.
//   npx tsx bench/gc-throughput.ts [--blobs 5000] [--store both|s3|filesystem] [--keep 0.1]
//                                  [--endpoint http://127.0.0.1:8080] [--sweep-delay 1s]
// --blobs is the number of blobs written (manifests included); --keep the fraction of recovery
// points retention keeps. The collector's sweep delay (gc.sweepDelay, 1 m by default in
// production) is a fixed wait, shown apart and left out of the sweep rate. --store s3 needs
// deploy/swift/start.sh; the bucket is removed afterwards.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/config/units.js';
import { Registry } from '../src/registry/registry.js';
import { Collector, type GcPhase, type GcReport } from '../src/retention/gc.js';
import { prune } from '../src/retention/prune.js';
import type { ObjectStore } from '../src/storage/driver.js';
import { FilesystemStore } from '../src/storage/filesystem.js';
import { S3Store } from '../src/storage/s3.js';
import { removeBucket, swiftOptions } from '../test/helpers/stores.js';
import { timed } from './lib.js';

const { values } = parseArgs({
  options: {
    blobs: { type: 'string', default: '5000' },
    store: { type: 'string', default: 'both' },
    keep: { type: 'string', default: '0.1' },
    endpoint: { type: 'string', default: 'http://127.0.0.1:8080' },
    'sweep-delay': { type: 'string', default: '1s' },
    concurrency: { type: 'string', default: '16' },
  },
});
const totalBlobs = Number(values.blobs);
const keepFraction = Number(values.keep);
const sweepDelayMs = parseDuration(values['sweep-delay']!)!;
const concurrency = Number(values.concurrency);
if (!(totalBlobs > 0) || !(keepFraction >= 0 && keepFraction <= 1) || sweepDelayMs === undefined) throw new Error('bad arguments');

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const LAYERS_PER_IMAGE = 3; // + config + manifest: 5 blobs per image
const BLOBS_PER_IMAGE = LAYERS_PER_IMAGE + 2;
const REPOSITORIES = 10;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface StoreSetup {
  name: string;
  store: ObjectStore;
  cleanup(): Promise<void>;
}

async function filesystem(): Promise<StoreSetup> {
  const root = await mkdtemp(path.join(tmpdir(), 'drreg-gc-bench-'));
  // fsync on, as the registry runs by default.
  return { name: 'filesystem', store: new FilesystemStore({ root, fsync: true }), cleanup: () => rm(root, { recursive: true, force: true }) };
}

async function s3(): Promise<StoreSetup> {
  const options = { ...swiftOptions(`gc-bench-${Date.now()}`), endpoint: values.endpoint! };
  const store = new S3Store(options);
  await store.check();
  return { name: 's3 (Swift)', store, cleanup: () => removeBucket(options) };
}

/** Runs `work(i)` for i in [0, n) with at most `limit` at once. */
async function pool(n: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

/** Pushes images through the registry domain: small random layers and a config, then the manifest under `latest`. */
async function fill(registry: Registry, images: number): Promise<void> {
  await pool(images, concurrency, async (i) => {
    const repo = `bench/system-${i % REPOSITORIES}`;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', image: i }));
    const layers = Array.from({ length: LAYERS_PER_IMAGE }, () => randomBytes(1024));
    for (const blob of [config, ...layers]) {
      await registry.blobs.putBytes(sha256(blob), blob);
      await registry.linkBlob(repo, sha256(blob));
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
      }),
    );
    await registry.manifests.put(repo, { kind: 'tag', tag: 'latest' }, manifest, OCI_MANIFEST);
  });
}

interface Result {
  store: string;
  blobs: number;
  fillSeconds: number;
  pruneSeconds: number;
  report: GcReport;
  phases: Partial<Record<GcPhase, number>>;
  totalSeconds: number;
}

async function measure(setup: StoreSetup): Promise<Result> {
  const registry = new Registry(setup.store, {
    maxManifestBytes: 4 * 1024 * 1024,
    tagCacheTtlMs: 0,
    blobIndexCacheEntries: 10_000,
    gcGraceMs: 0,
    gcSweepDelayMs: sweepDelayMs,
  });
  const images = Math.ceil(totalBlobs / BLOBS_PER_IMAGE);
  const filled = await timed(() => fill(registry, images));
  const keepLast = Math.max(1, Math.round((images / REPOSITORIES) * keepFraction));
  const pruned = await timed(() => prune(registry, [{ repositories: 'bench/**', keepLast }]));
  // Seconds spent in each phase: from its first progress event to the next phase's.
  const starts: Array<[GcPhase, number]> = [];
  const collector = new Collector(registry, {
    graceMs: 0,
    sweepDelayMs,
    retentionGraceMs: 0,
    deleteUntagged: false,
    onProgress: ({ phase }) => {
      if (starts.at(-1)?.[0] !== phase) starts.push([phase, performance.now()]);
    },
  });
  const run = await timed(() => collector.run());
  const phases: Partial<Record<GcPhase, number>> = {};
  for (const [i, [phase, at]] of starts.entries()) {
    const end = starts[i + 1]?.[1] ?? at;
    phases[phase] = (phases[phase] ?? 0) + (end - at) / 1000;
  }
  if (run.value.blobsSwept === 0) throw new Error(`${setup.name}: nothing swept (pruned ${pruned.value.droppedPoints} points)`);
  return { store: setup.name, blobs: images * BLOBS_PER_IMAGE, fillSeconds: filled.seconds, pruneSeconds: pruned.seconds, report: run.value, phases, totalSeconds: run.seconds };
}

const stores = values.store === 'both' ? [filesystem, s3] : values.store === 's3' ? [s3] : [filesystem];
const results: Result[] = [];
for (const make of stores) {
  const setup = await make();
  try {
    results.push(await measure(setup));
  } finally {
    await setup.store.close?.();
    await setup.cleanup();
  }
}

const f = (n: number | undefined, digits = 1) => (n ?? 0).toFixed(digits);
console.log(`gc throughput: ${totalBlobs} blobs of about 1 KiB in images of ${BLOBS_PER_IMAGE}, ${REPOSITORIES} repositories, keep ${keepFraction * 100}% of points, sweep delay ${sweepDelayMs} ms`);
console.log('store          blobs  swept  MiB freed  fill s  prune s  lease s  mark s  tombstone s  wait s  remark s  sweep s  uploads s  total s  swept/min  swept/min excl. wait');
for (const r of results) {
  const p = r.phases;
  const busy = r.totalSeconds - (p.wait ?? 0);
  console.log(
    [
      r.store.padEnd(12),
      String(r.report.blobsScanned).padStart(7),
      String(r.report.blobsSwept).padStart(6),
      f((r.report.bytesFreed + r.report.uploadBytesFreed) / 1024 / 1024, 2).padStart(10),
      f(r.fillSeconds).padStart(7),
      f(r.pruneSeconds).padStart(8),
      f(p.lease).padStart(8),
      f(p.mark).padStart(7),
      f(p.tombstone).padStart(12),
      f(p.wait).padStart(7),
      f(p.remark).padStart(9),
      f(p.sweep).padStart(8),
      f(p.uploads).padStart(10),
      f(r.totalSeconds).padStart(8),
      f((r.report.blobsSwept / r.totalSeconds) * 60, 0).padStart(10),
      f((r.report.blobsSwept / busy) * 60, 0).padStart(22),
    ].join(' '),
  );
}
for (const r of results) console.log(`${r.store}: ${JSON.stringify({ ...r.report, startedAt: undefined, finishedAt: undefined })}`);
