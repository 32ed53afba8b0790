// Uploads to a registry that ignores the body of a single POST ?digest= (CNCF Distribution answers
// 202, as the OCI spec allows): the client learns that from the first answer and from then on
// sends each blob's bytes once (POST without a body, PUT with it), counted by a proxy in between.
// Against dr-registry the single POST stores the blob: one request, bytes sent once.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCountingProxy, type CountingProxy } from '../../bench/dr/proxy.js';
import { RegistryClient } from '../../src/client/registry-client.js';
import { loadSnapshot } from '../../src/volumes/snapshot.js';
import { pushVolume } from '../../src/volumes/push.js';
import { startDistribution, type RunningDistribution } from '../services/distribution.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pseudoRandom } from '../volumes/trees.js';

const sizes = { min: 16 * 1024, avg: 32 * 1024, max: 128 * 1024 };

describe('single-request uploads', () => {
  let work: string;
  let source: string;
  let distribution: RunningDistribution;
  let ours: TestRegistry;
  const proxies: CountingProxy[] = [];
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-single-post-'));
    source = path.join(work, 'src');
    mkdirSync(source);
    // 8 incompressible files of 200 KiB: a few dozen chunks.
    for (let i = 0; i < 8; i++) writeFileSync(path.join(source, `f${i}`), pseudoRandom(`single-post-${i}`, 200 * 1024));
    [distribution, ours] = await Promise.all([startDistribution(), startTestRegistry()]);
  }, 60_000);
  afterAll(async () => {
    for (const p of proxies) await p.close();
    await distribution?.stop();
    await ours?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function pushThroughProxy(upstream: string, repo: string) {
    const proxy = await startCountingProxy(upstream);
    proxies.push(proxy);
    const client = new RegistryClient({ registry: proxy.hostPort });
    const result = await pushVolume({ client, repo, tag: 'a', dir: source, sizes });
    const traffic = proxy.take();
    const snapshot = (await loadSnapshot(client, repo, 'a'))!;
    const size = new Map(snapshot.blobs.map((b) => [b.digest, b.size]));
    const twice = [...traffic.sentByDigest].filter(([d, n]) => n > size.get(d)!);
    const stored = [...traffic.sentByDigest.keys()].reduce((s, d) => s + size.get(d)!, 0);
    return { result, traffic, twice, stored };
  }

  it('Distribution (202 to the single POST): only the first blob is sent twice', async () => {
    const { result, traffic, twice, stored } = await pushThroughProxy(distribution.url, 'dist/vol');
    expect(result.newChunks).toBeGreaterThan(10);
    expect(twice.length).toBeLessThanOrEqual(1);
    // Manifest bytes aside, what crossed the wire is the blobs once plus at most one of them.
    const largest = Math.max(...traffic.sentByDigest.values());
    expect(traffic.sent).toBeLessThanOrEqual(stored + largest + 64 * 1024);
  }, 120_000);

  it('dr-registry (201 to the single POST): every blob is sent once', async () => {
    const { twice, traffic, stored } = await pushThroughProxy(`http://${ours.hostPort}`, 'ours/vol');
    expect(twice).toEqual([]);
    expect(traffic.sent).toBeLessThanOrEqual(stored + 64 * 1024);
  }, 120_000);
});
