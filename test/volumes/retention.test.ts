// Retention and GC over volume snapshots, as over images: four daily snapshots of a volume, keep
// the last 2, collect. The store then holds exactly the blobs of the kept snapshots (chunks only
// the dropped ones held are gone, shared ones stay), and the kept snapshots restore bit for bit.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/client/registry-client.js';
import * as paths from '../../src/registry/paths.js';
import { storageUsage } from '../../src/registry/usage.js';
import { Collector } from '../../src/retention/gc.js';
import { prune } from '../../src/retention/prune.js';
import { pullVolume } from '../../src/volumes/pull.js';
import { pushVolume } from '../../src/volumes/push.js';
import { loadSnapshot } from '../../src/volumes/snapshot.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { compareTrees } from './trees.js';

const MiB = 1024 * 1024;
const ADMIN_TOKEN = 'volume-admin-token-0123456789';

describe('retention and GC of volume snapshots', () => {
  let registry: TestRegistry;
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-vol-retention-'));
    registry = await startTestRegistry({ env: { DRREG_ADMIN_TOKEN: ADMIN_TOKEN } });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('keeps the last 2 of 4 snapshots; exactly their blobs remain and they restore', async () => {
    const client = new RegistryClient({ registry: registry.hostPort });
    const live = path.join(work, 'live');
    mkdirSync(live);
    writeFileSync(path.join(live, 'base.bin'), randomBytes(6 * MiB));
    const points: { digest: string; copy: string; blobs: Map<string, number> }[] = [];
    for (let day = 0; day < 4; day++) {
      writeFileSync(path.join(live, `day-${day}.bin`), randomBytes(2 * MiB));
      if (day > 0) rmSync(path.join(live, `day-${day - 1}.bin`));
      const pushed = await pushVolume({ client, repo: 'vols/db', tag: 'daily', dir: live });
      const copy = path.join(work, `copy-${day}`);
      execFileSync('cp', ['-a', live, copy]);
      const snap = (await loadSnapshot(client, 'vols/db', pushed.digest))!;
      const manifest = await client.getManifest('vols/db', pushed.digest);
      const blobs = new Map<string, number>([[pushed.digest, manifest!.bytes.length]]);
      for (const b of snap.blobs) blobs.set(b.digest, b.size);
      points.push({ digest: pushed.digest, copy, blobs });
    }
    const union = (ps: typeof points) => new Map(ps.flatMap((p) => [...p.blobs]));
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const all = union(points);
    expect((await storageUsage(registry.registry)).uniqueBytes).toBe(sum(all));

    // The admin API lists them as volume snapshots with their logical size.
    const listing = (await (
      await fetch(`${registry.url}/admin/v1/recovery-points?repository=vols/db`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json()) as { points: { digest: string; artifactType?: string; logicalSize?: number }[] };
    expect(listing.points).toHaveLength(4);
    for (const p of listing.points) expect(p).toMatchObject({ artifactType: 'application/vnd.dr-registry.volume.v1', logicalSize: 8 * MiB });

    const pruned = await prune(registry.registry, [{ repositories: 'vols/*', keepLast: 2 }]);
    expect(pruned.droppedPoints).toBe(2);
    const report = await new Collector(registry.registry, { graceMs: 0, sweepDelayMs: 100, retentionGraceMs: 0, deleteUntagged: false }).run();
    const kept = points.slice(2);
    const needed = union(kept);
    // The dropped days' own chunks (day-0, day-1 files) went; the base's chunks stayed.
    expect(report.bytesFreed).toBe(sum(all) - sum(needed));
    expect(report.bytesFreed).toBeGreaterThan(4 * MiB);
    const indexed = new Set<string>();
    for await (const obj of registry.store.list(paths.BLOBS_PREFIX)) indexed.add(paths.digestFromBlobIndexKey(obj.key)!);
    expect([...indexed].sort()).toEqual([...needed.keys()].sort());

    for (const [i, p] of kept.entries()) {
      const dest = path.join(work, `restored-${i}`);
      await pullVolume({ client, repo: 'vols/db', reference: p.digest, dest });
      expect(compareTrees(p.copy, dest)).toEqual([]);
    }
    await expect(pullVolume({ client, repo: 'vols/db', reference: points[0]!.digest, dest: path.join(work, 'gone') })).rejects.toThrow(/not found/);
  }, 120_000);
});
