// The DR retention scenario with real clients: two systems sharing a base push `latest` fifteen
// times each (30 recovery points, skopeo for speed), retention keeps the last 3 of each, the
// collector runs, and the store shrinks to exactly what the 6 kept points need, the shared base
// counted once. The kept points pull with `docker pull` by digest; the pruned ones are gone.
import { readdir, stat } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as paths from '../../src/registry/paths.js';
import { storageUsage } from '../../src/registry/usage.js';
import { Collector } from '../../src/retention/gc.js';
import { prune } from '../../src/retention/prune.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { docker, dockerPull, freshSkopeo, skopeoCopyToRegistry } from './clients.js';
import { buildImage, writeLayout, type Image, type LayerSpec } from './images.js';

const KiB = 1024;
const BASE: LayerSpec[] = [
  { seed: 'dr-retention-base-os', size: 1024 * KiB },
  { seed: 'dr-retention-base-libs', size: 512 * KiB },
];
const SYSTEMS = ['dr/system-a', 'dr/system-b'];
const PUSHES_PER_SYSTEM = 15;
const KEEP_LAST = 3;

interface Point {
  repo: string;
  digest: string;
  image: Image;
}

/** The distinct blobs of some images (manifest, config, layers) with their sizes. */
function distinctBlobs(images: Image[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const i of images) for (const b of [i.manifest, i.config, ...i.layers]) out.set(b.digest, b.bytes.length);
  return out;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((n, s) => n + s, 0);

async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

describe('DR retention: 30 points of two systems sharing a base, keep last 3', () => {
  let registry: TestRegistry;
  let work: string;
  const dockerHost = inject('dockerHost');
  const pulledRefs: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-dr-retention-'));
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    if (pulledRefs.length > 0) await docker(dockerHost)(['rmi', ...pulledRefs]).catch(() => undefined);
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('frees everything but the 6 kept points, which pull with docker', async () => {
    // Each system its own host (its own skopeo cache); each push a new small layer on the base.
    const hosts = await Promise.all(SYSTEMS.map(() => freshSkopeo(work)));
    const points: Point[] = [];
    for (let n = 0; n < PUSHES_PER_SYSTEM; n++) {
      for (const [s, repo] of SYSTEMS.entries()) {
        const image = buildImage([...BASE, { seed: `${repo}-day-${n}`, size: 48 * KiB, marker: `${repo} day ${n}` }], {
          configMarker: `${repo}-${n}`,
        });
        const layout = path.join(work, `${s}-${n}`);
        await writeLayout(layout, 'v1', { image });
        const digest = await skopeoCopyToRegistry(hosts[s]!, layout, 'v1', registry.hostPort, repo, 'latest');
        expect(digest).toBe(image.manifest.digest);
        points.push({ repo, digest, image });
      }
    }
    for (const repo of SYSTEMS) expect(await registry.registry.recoveryPoints.list(repo)).toHaveLength(PUSHES_PER_SYSTEM);

    // Before: every point's blobs, the base once.
    const all = distinctBlobs(points.map((p) => p.image));
    const before = await storageUsage(registry.registry);
    expect(before.uniqueBytes).toBe(sum(all));

    const kept = SYSTEMS.flatMap((repo) => points.filter((p) => p.repo === repo).slice(-KEEP_LAST));
    const dropped = points.filter((p) => !kept.includes(p));
    const pruned = await prune(registry.registry, [{ repositories: 'dr/*', keepLast: KEEP_LAST }]);
    expect(pruned.droppedPoints).toBe(2 * (PUSHES_PER_SYSTEM - KEEP_LAST));
    const report = await new Collector(registry.registry, { graceMs: 0, sweepDelayMs: 100, retentionGraceMs: 0, deleteUntagged: false }).run();

    // After: exactly the 6 kept points' blobs, the shared base counted once.
    const needed = distinctBlobs(kept.map((p) => p.image));
    expect(needed.size).toBe(BASE.length + kept.length * 3); // the base, then manifest, config and own layer of each
    expect(report.manifestsRemoved).toBe(dropped.length);
    expect(report.blobsSwept).toBe(all.size - needed.size);
    expect(report.bytesFreed).toBe(sum(all) - sum(needed));
    const after = await storageUsage(registry.registry);
    expect(after.uniqueBytes).toBe(sum(needed));
    const indexed = new Set<string>();
    for await (const obj of registry.store.list(paths.BLOBS_PREFIX)) indexed.add(paths.digestFromBlobIndexKey(obj.key)!);
    expect([...indexed].sort()).toEqual([...needed.keys()].sort());
    // What the disk holds under data/: the same bytes, nothing of the pruned points or uploads.
    expect(await bytesUnder(path.join(registry.root, 'data'))).toBe(sum(needed));
    console.log(
      `dr-retention: stored blob bytes ${sum(all)} -> ${sum(needed)} (${report.blobsSwept} blobs, ${report.manifestsRemoved} manifests collected)`,
    );

    // The pruned points are gone from the registry.
    for (const p of dropped) {
      const head = await fetch(`${registry.url}/v2/${p.repo}/manifests/${p.digest}`, { method: 'HEAD' });
      expect(head.status, `${p.repo}@${p.digest}`).toBe(404);
    }
    await expect(dockerPull(dockerHost, `${registry.hostPort}/${dropped[0]!.repo}@${dropped[0]!.digest}`)).rejects.toThrow(/not found|unknown/i);

    // The kept points pull with docker, by digest, with the digest they were pushed with.
    for (const p of kept) {
      const ref = `${registry.hostPort}/${p.repo}@${p.digest}`;
      expect(await dockerPull(dockerHost, ref)).toBe(p.digest);
      pulledRefs.push(ref);
    }
    const latest = await dockerPull(dockerHost, `${registry.hostPort}/${SYSTEMS[0]}:latest`);
    pulledRefs.push(`${registry.hostPort}/${SYSTEMS[0]}:latest`);
    expect(latest).toBe(kept[KEEP_LAST - 1]!.digest);
  }, 180_000);
});
