// Recovery points over HTTP pushes: every push that moves a tag is a point; pin, restore, pulls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, pushImage, putManifest } from '../http/client.js';

describe('recovery points', () => {
  let registry: TestRegistry;
  const digests: string[] = [];

  beforeAll(async () => {
    registry = await startTestRegistry();
    for (const day of ['mon', 'tue', 'wed']) {
      const pushed = await putManifest(registry.url, 'dr/moodle', 'latest', await pushImage(registry.url, 'dr/moodle', day), OCI_MANIFEST);
      expect(pushed.res.status).toBe(201);
      digests.push(pushed.digest);
      await new Promise((r) => setTimeout(r, 5)); // distinct push times
    }
    // Pushing the same content again does not make a new point.
    const again = await putManifest(registry.url, 'dr/moodle', 'latest', await pushImage(registry.url, 'dr/moodle', 'wed'), OCI_MANIFEST);
    expect(again.digest).toBe(digests[2]);
  });
  afterAll(() => registry?.stop());

  const points = () => registry.registry.recoveryPoints.list('dr/moodle');

  it('lists one point per push that moved the tag, oldest first, the newest current', async () => {
    const list = (await points()).filter((p) => p.tag === 'latest');
    expect(list.map((p) => p.digest)).toEqual(digests);
    expect(list.map((p) => p.current)).toEqual([false, false, true]);
    expect(list[0]!.pushedAt.getTime()).toBeLessThan(list[2]!.pushedAt.getTime());
  });

  it('every point stays pullable by digest', async () => {
    for (const digest of digests) expect((await fetch(`${registry.url}/v2/dr/moodle/manifests/${digest}`)).status).toBe(200);
  });

  it('records the last pull time of a point', async () => {
    const before = Date.now();
    await fetch(`${registry.url}/v2/dr/moodle/manifests/${digests[0]}`);
    await new Promise((r) => setTimeout(r, 50)); // recorded after the response
    const first = (await points()).find((p) => p.digest === digests[0])!;
    expect(first.lastPulledAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it('pins and unpins a point, and refuses to pin an unknown manifest', async () => {
    await registry.registry.recoveryPoints.pin('dr/moodle', digests[1]!);
    expect((await points()).filter((p) => p.pinned).map((p) => p.digest)).toEqual([digests[1]]);
    await registry.registry.recoveryPoints.unpin('dr/moodle', digests[1]!);
    expect((await points()).some((p) => p.pinned)).toBe(false);
    await expect(registry.registry.recoveryPoints.pin('dr/moodle', `sha256:${'0'.repeat(64)}`)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('restores the tag to an older point, recorded as a new point', async () => {
    await registry.registry.recoveryPoints.restore('dr/moodle', 'latest', digests[0]!);
    const head = await fetch(`${registry.url}/v2/dr/moodle/manifests/latest`, { method: 'HEAD' });
    expect(head.headers.get('docker-content-digest')).toBe(digests[0]);
    const list = (await points()).filter((p) => p.tag === 'latest');
    expect(list.map((p) => p.digest)).toEqual([...digests, digests[0]]);
    expect(list.at(-1)!.current).toBe(true);
  });
});
