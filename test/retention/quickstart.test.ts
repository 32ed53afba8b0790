// The README's retention quickstart, as it says: a pruned point keeps its data for
// retention.grace (a collection before then frees nothing of it); the first collection after the
// grace frees it, in that same run.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cli.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { blobExists, pushPoint, type PushedImage } from './helpers.js';

const GRACE_MS = 5000;

describe('README retention quickstart', () => {
  let registry: TestRegistry;
  const points: PushedImage[] = [];

  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: '*', keepLast: 1 }]),
        DRREG_RETENTION_GRACE: `${GRACE_MS}ms`,
        DRREG_GC_GRACE: '0',
        DRREG_GC_SWEEPDELAY: '50ms',
      },
    });
    const base = randomBytes(10_000);
    for (let i = 0; i < 3; i++) points.push(await pushPoint(registry.url, 'dr/app', 'latest', base));
  });
  afterAll(() => registry?.stop());

  it('frees the space of pruned points at the first gc after retention.grace, not before', async () => {
    const dry = await registry.maintenance.prune({ dryRun: true });
    expect(dry.droppedPoints).toBe(2);
    const pruned = await registry.maintenance.prune({ dryRun: false });
    const prunedAt = Date.now();
    expect(pruned.freedBytes).toBe(dry.freedBytes);

    // Within the grace: restorable, and a collection frees nothing of it.
    const early = await registry.maintenance.runGc({ dryRun: false });
    expect(Date.now() - prunedAt, 'the early collection ran within the grace').toBeLessThan(GRACE_MS);
    expect(early.bytesFreed).toBe(0);
    expect(early.prunedPointsExpired).toBe(0);
    for (const p of points.slice(0, 2)) expect(await blobExists(registry.registry, p.digest)).toBe(true);

    // Past the grace: the next collection removes the points and their unique blobs in one run.
    await waitFor(async () => (Date.now() - prunedAt > GRACE_MS + 1000 ? true : undefined), GRACE_MS + 10_000, 'the retention grace to pass');
    const late = await registry.maintenance.runGc({ dryRun: false });
    expect(late.prunedPointsExpired).toBe(2);
    expect(late.bytesFreed).toBe(dry.freedBytes);
    for (const p of points.slice(0, 2)) {
      expect(await blobExists(registry.registry, p.digest)).toBe(false);
      expect(await blobExists(registry.registry, p.blobs[2]!)).toBe(false); // its unique layer
    }
    expect(await blobExists(registry.registry, points[2]!.digest)).toBe(true);
    expect(await blobExists(registry.registry, points[2]!.blobs[1]!)).toBe(true); // the shared base
  });
});
