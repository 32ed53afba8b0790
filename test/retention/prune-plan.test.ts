// The prune dry run on a real registry: two systems sharing a base layer, several recovery
// points each; the plan drops exactly the old points and counts only the bytes they alone use.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planPrune } from '../../src/retention/prune-plan.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, OCI_INDEX, pushBlob, putManifest, sha256 } from '../http/client.js';

describe('prune plan (dry run)', () => {
  let registry: TestRegistry;
  const base = randomBytes(100_000);
  const uniqueBytes = new Map<string, number[]>(); // repo -> bytes each point alone uses, oldest first

  async function pushPoint(repo: string, n: number) {
    const app = randomBytes(1000 + n);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n, repo }));
    for (const b of [base, app, config]) await pushBlob(registry.url, repo, b);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(base), size: base.length },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(app), size: app.length },
      ],
    };
    const pushed = await putManifest(registry.url, repo, 'latest', manifest, OCI_MANIFEST);
    expect(pushed.res.status).toBe(201);
    uniqueBytes.set(repo, [...(uniqueBytes.get(repo) ?? []), app.length + config.length + pushed.bytes.length]);
    await new Promise((r) => setTimeout(r, 3));
  }

  beforeAll(async () => {
    registry = await startTestRegistry();
    for (let n = 0; n < 5; n++) {
      await pushPoint('site/system-a', n);
      await pushPoint('site/system-b', n);
    }
    await pushPoint('other/kept', 0);
  });
  afterAll(() => registry?.stop());

  it('drops all but the last 2 points of matching repositories and counts only their own bytes', async () => {
    const result = await planPrune(registry.registry, [{ repositories: 'site/*', keepLast: 2 }]);
    expect(result.droppedPoints).toBe(6);
    expect(result.keptPoints).toBe(5);
    const a = result.repositories.find((r) => r.name === 'site/system-a')!;
    expect(a.policy).toBe('site/*');
    expect(a.decisions.map((d) => d.keep)).toEqual([false, false, false, true, true]);
    const expected = ['site/system-a', 'site/system-b'].flatMap((r) => uniqueBytes.get(r)!.slice(0, 3)).reduce((x, y) => x + y, 0);
    expect(result.freedBytes).toBe(expected); // the shared base stays: kept points use it
  });

  it('frees nothing when nothing matches, and everything a dropped index alone reaches', async () => {
    expect((await planPrune(registry.registry, [{ repositories: 'nothing/*', keepLast: 1 }])).freedBytes).toBe(0);

    // An index whose child is untagged: dropping the index frees the child too.
    const childConfig = Buffer.from('{"architecture":"arm64","os":"linux"}');
    const layer = randomBytes(5000);
    await pushBlob(registry.url, 'multi/app', childConfig);
    await pushBlob(registry.url, 'multi/app', layer);
    const childManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(childConfig), size: childConfig.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    };
    const child = await putManifest(registry.url, 'multi/app', sha256(JSON.stringify(childManifest)), childManifest, OCI_MANIFEST);
    expect(child.res.status).toBe(201);
    const index = (n: number) => ({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.bytes.length }], annotations: { n: String(n) } });
    const first = await putManifest(registry.url, 'multi/app', 'v', index(1), OCI_INDEX);
    await new Promise((r) => setTimeout(r, 3));
    const second = await putManifest(registry.url, 'multi/app', 'v', { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }, OCI_INDEX);
    const result = await planPrune(registry.registry, [{ repositories: 'multi/*', keepLast: 1 }]);
    expect(result.droppedPoints).toBe(1);
    expect(result.freedBytes).toBe(first.bytes.length + child.bytes.length + childConfig.length + layer.length);
    expect(second.res.status).toBe(201);
  });
});
