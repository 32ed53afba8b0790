// Dedup measured: logical bytes per repository against what the store holds.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageUsage } from '../../src/registry/usage.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { storeFactories } from '../helpers/stores.js';

describe.each(storeFactories())('storage usage on $name', ({ make }) => {
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const made = await make();
    cleanup = made.cleanup;
    registry = await startTestRegistry({ store: made.store });
  });
  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  it('counts a blob shared by three repositories three times logically and once stored', async () => {
    const shared = randomBytes(200_000);
    const own = randomBytes(50_000);
    const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    for (const repo of ['site/a', 'site/b', 'site/c']) {
      const r = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${digest(shared)}`, { method: 'POST', body: shared });
      expect(r.status).toBe(201);
    }
    await fetch(`${registry.url}/v2/site/a/blobs/uploads/?digest=${digest(own)}`, { method: 'POST', body: own });

    const usage = await storageUsage(registry.registry);
    expect(usage.repositories.map((r) => [r.name, r.logicalBytes, r.exclusiveBytes, r.blobs])).toEqual([
      ['site/a', 250_000, 50_000, 2],
      ['site/b', 200_000, 0, 1],
      ['site/c', 200_000, 0, 1],
    ]);
    expect(usage.logicalBytes).toBe(650_000);
    expect(usage.uniqueBytes).toBe(250_000);
    // Stored: the two blobs' bytes once, plus small indexes, links and markers.
    expect(usage.storedBytes).toBeGreaterThanOrEqual(250_000);
    expect(usage.storedBytes).toBeLessThan(260_000);
  });
});
