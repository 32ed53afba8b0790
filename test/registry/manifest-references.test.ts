// Manifest reference amplification (issue 10, item 2): a manifest naming one stored blob thousands
// of times must not cost thousands of store calls. Over the limit (manifests.maxReferences) it is
// refused before any store call; under it, each distinct reference is checked once. The
// mechanism is asserted through the metered store's call counts; the wall time is measured by
// bench/manifest-references.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, pushBlob, putManifest } from '../http/client.js';

/** Total store calls the registry made so far (every operation, every outcome). */
async function storeCalls(registry: TestRegistry): Promise<number> {
  const metric = await registry.metrics.storeOperations.get();
  return metric.values.reduce((n, v) => n + v.value, 0);
}

function amplified(config: string, layer: string, copies: number) {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
    layers: Array.from({ length: copies }, () => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 5 })),
  };
}

describe('manifest references', () => {
  let registry: TestRegistry;
  let config: string;
  let layer: string;

  beforeAll(async () => {
    registry = await startTestRegistry({ env: { DRREG_MANIFESTS_MAXREFERENCES: '20000' } });
    config = await pushBlob(registry.url, 'amp/app', Buffer.from('{}'));
    layer = await pushBlob(registry.url, 'amp/app', Buffer.from('layer'));
  });
  afterAll(() => registry?.stop());

  it('checks a blob named 5,000 times once', async () => {
    const before = await storeCalls(registry);
    const { res } = await putManifest(registry.url, 'amp/app', 'many', amplified(config, layer, 5000), OCI_MANIFEST);
    expect(res.status).toBe(201);
    // Two distinct references and the manifest's own writes: a few dozen calls, not thousands.
    expect((await storeCalls(registry)) - before).toBeLessThan(60);
  });

  it('refuses descriptors that disagree on a blob size', async () => {
    const doc = amplified(config, layer, 2);
    doc.layers[1]!.size = 6;
    const { res, json } = await putManifest(registry.url, 'amp/app', 'sizes', doc, OCI_MANIFEST);
    expect(res.status).toBe(400);
    expect(json!.errors[0]!.code).toBe('MANIFEST_INVALID');
  });
});

describe('manifests.maxReferences (default)', () => {
  let registry: TestRegistry;

  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry?.stop());

  it('refuses a manifest over the limit with MANIFEST_INVALID, before any store call', async () => {
    const config = await pushBlob(registry.url, 'amp/app', Buffer.from('{}'));
    const layer = await pushBlob(registry.url, 'amp/app', Buffer.from('layer'));
    const before = await storeCalls(registry);
    const { res, json } = await putManifest(registry.url, 'amp/app', 'many', amplified(config, layer, 5000), OCI_MANIFEST);
    expect(res.status).toBe(400);
    const error = (json as unknown as { errors: Array<{ code: string; detail: { reason: string } }> }).errors[0]!;
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.detail.reason).toMatch(/manifests\.maxReferences/);
    expect((await storeCalls(registry)) - before).toBe(0);
    // At the limit it is accepted.
    const atLimit = await putManifest(registry.url, 'amp/app', 'limit', amplified(config, layer, 999), OCI_MANIFEST);
    expect(atLimit.res.status).toBe(201);
  });
});
