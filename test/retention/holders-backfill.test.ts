// Layer links made before the reverse index (holders/, docs/dedup.md) have no holder entry, so a
// HEAD in another repository does not find the blob and the client uploads it again. The
// collector's link walk writes the missing entries for live links: afterwards the HEAD links.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as paths from '../../src/registry/paths.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { collector, pushPoint } from './helpers.js';

describe('holder entries backfilled by the collector', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('a live link without a holder entry gets one; then a HEAD elsewhere links the blob', async () => {
    const image = await pushPoint(registry.url, 'old/app', 'latest', randomBytes(5000));
    // As before the reverse index existed: the links, no holder entries.
    for (const d of image.blobs) await registry.store.delete(paths.holderKey(d, 'old/app'));
    const base = image.blobs[1]!;
    const before = await fetch(`${registry.url}/v2/new/app/blobs/${base}`, { method: 'HEAD' });
    expect(before.status).toBe(404);

    const report = await collector(registry.registry).run();
    expect(report.holdersBackfilled).toBe(image.blobs.length);
    for (const d of image.blobs) expect(await registry.store.stat(paths.holderKey(d, 'old/app'))).toBeDefined();
    const after = await fetch(`${registry.url}/v2/new/app/blobs/${base}`, { method: 'HEAD' });
    expect(after.status).toBe(200);

    // Nothing missing: the next run writes nothing.
    expect((await collector(registry.registry).run()).holdersBackfilled).toBe(0);
  }, 60_000);
});
