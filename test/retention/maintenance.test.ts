// Scheduled maintenance (retention.interval): two replicas on one store both schedule prune + GC;
// the lease lets one collect at a time, old points go, the kept ones stay whole. Every wait is on
// a condition, so a busy machine makes it slower, never red.
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
  const env = {
    DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: 'dr/*', keepLast: 2 }]),
    DRREG_RETENTION_INTERVAL: '300ms',
    DRREG_RETENTION_GRACE: '0',
    DRREG_GC_GRACE: '0',
    DRREG_GC_SWEEPDELAY: '50ms',
  };

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'drreg-sched-'));
  });
  afterAll(async () => {
    // stop() waits for a scheduled run in progress: nothing writes into root while it is removed.
    for (const r of replicas) await r.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** Waits for a condition, polling; the deadline only bounds a hung test. */
  async function until(what: string, condition: () => Promise<boolean>, ms = 120_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  it('drops old points in the background and keeps the last two of each repository whole', async () => {
    // The points are pushed before the schedules start. With gc.grace 0 (test-sized) nothing
    // protects a push in progress, so a collection that ran between a push's blobs and its
    // manifest removed the blobs (MANIFEST_BLOB_UNKNOWN on a busy machine): what a real
    // deployment's gc.grace is for, and not what this test is about.
    const pusher = await startTestRegistry({ store: new FilesystemStore({ root, fsync: false }) });
    const base = randomBytes(20_000);
    const pushed = [];
    try {
      for (let i = 0; i < 6; i++) pushed.push(await pushPoint(pusher.url, 'dr/app', 'latest', base));
    } finally {
      await pusher.stop();
    }
    for (let i = 0; i < 2; i++) replicas.push(await startTestRegistry({ store: new FilesystemStore({ root, fsync: false }), env }));

    const old = pushed.slice(0, 4);
    await until('the old points collected', async () => {
      const statuses = await Promise.all(old.map(async (p) => (await fetch(`${replicas[0]!.url}/v2/dr/app/manifests/${p.digest}`, { method: 'HEAD' })).status));
      return statuses.every((s) => s === 404);
    });
    // The schedules go on; wait until they have swept every blob of the old points, then stop
    // them (waiting for a run in progress) and check the store at rest.
    await until('nothing but the kept points left', async () => {
      try {
        return (await assertNoPartialBlobs(replicas[0]!.store)) === 2 * 3 + 1 && (await unreferencedParts(replicas[0]!.store)).length === 0;
      } catch {
        return false; // a sweep in progress between a blob's parts and its index
      }
    });
    for (const r of replicas) await r.maintenance.stop();
    for (const replica of replicas) for (const p of pushed.slice(4)) await pullsCompletely(replica.url, 'dr/app', p);
    expect(await assertNoPartialBlobs(replicas[0]!.store)).toBe(2 * 3 + 1);
    expect(await unreferencedParts(replicas[0]!.store)).toEqual([]);
  });
});
