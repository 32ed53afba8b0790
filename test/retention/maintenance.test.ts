// Scheduled maintenance (retention.interval): two replicas on one store both schedule prune + GC;
// the lease lets one collect at a time, old points go, the kept ones stay whole.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { assertNoPartialBlobs, unreferencedParts } from '../http/client.js';
import { pullsCompletely, pushPoint, sleep } from './helpers.js';

describe('scheduled prune and collection on two replicas', () => {
  let root: string;
  const replicas: TestRegistry[] = [];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'drreg-sched-'));
    const env = {
      DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: 'dr/*', keepLast: 2 }]),
      DRREG_RETENTION_INTERVAL: '300ms',
      DRREG_RETENTION_GRACE: '0',
      DRREG_GC_GRACE: '0',
      DRREG_GC_SWEEPDELAY: '50ms',
    };
    for (let i = 0; i < 2; i++) replicas.push(await startTestRegistry({ store: new FilesystemStore({ root, fsync: false }), env }));
  });
  afterAll(async () => {
    for (const r of replicas) await r.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('drops old points in the background and keeps the last two of each repository whole', async () => {
    const base = randomBytes(20_000);
    const pushed = [];
    for (let i = 0; i < 6; i++) pushed.push(await pushPoint(replicas[i % 2]!.url, 'dr/app', 'latest', base));
    const old = pushed.slice(0, 4);
    const deadline = Date.now() + 20_000;
    let remaining = old.length;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(old.map(async (p) => (await fetch(`${replicas[0]!.url}/v2/dr/app/manifests/${p.digest}`, { method: 'HEAD' })).status));
      remaining = statuses.filter((s) => s !== 404).length;
      if (remaining === 0) break;
      await sleep(200);
    }
    expect(remaining).toBe(0);
    for (const replica of replicas) for (const p of pushed.slice(4)) await pullsCompletely(replica.url, 'dr/app', p);
    // Let any run in progress finish, then nothing is partial and nothing is orphaned.
    for (const r of replicas) while ((await r.maintenance.gcStatus()).running) await sleep(50);
    expect(await assertNoPartialBlobs(replicas[0]!.store)).toBe(2 * 3 + 1);
    expect(await unreferencedParts(replicas[0]!.store)).toEqual([]);
  });
});
