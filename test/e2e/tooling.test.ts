// Proves the end-to-end tooling (image builder, skopeo and docker wrappers, the dockerd and
// Distribution services) against CNCF Distribution 2.8, so that a failure of the same steps
// against dr-registry points at the registry, not at the tooling.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Client } from 'minio';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startDistribution, type RunningDistribution } from '../services/distribution.js';
import { ensureDockerd, isRunning } from '../services/dockerd.js';
import { SWIFT_CREDENTIALS } from '../services/swift.js';
import {
  docker,
  dockerImageDigest,
  dockerLoadFromLayout,
  dockerPull,
  dockerPush,
  dockerRmi,
  freshSkopeo,
  skopeoCopyToRegistry,
  skopeoInspectRaw,
} from './clients.js';
import { buildOciLayout, type LayerSpec } from './images.js';

const KiB = 1024;
const BASE: LayerSpec[] = [
  { seed: 'tooling-base-os', size: 512 * KiB },
  { seed: 'tooling-base-lib', size: 256 * KiB },
];
const TIMEOUT = 180_000;

describe('e2e tooling against CNCF Distribution', () => {
  const dockerHost = inject('dockerHost');
  let work: string;
  let registry: RunningDistribution;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-tooling-'));
    registry = await startDistribution();
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('builds the same digests from the same seeds, shares base layers, embeds markers', async () => {
    const spec = (app: string) => ({ layers: [...BASE, { seed: app, size: 4 * KiB, marker: `marker-${app}` }], configMarker: `cfg-${app}` });
    const a1 = await buildOciLayout(path.join(work, 'same-1'), { tag: 'v1', image: spec('tooling-app-a') });
    const a2 = await buildOciLayout(path.join(work, 'same-2'), { tag: 'v1', image: spec('tooling-app-a') });
    const b = await buildOciLayout(path.join(work, 'other'), { tag: 'v1', image: spec('tooling-app-b') });
    expect(a2.digest).toBe(a1.digest);
    const [imgA, imgB] = [a1.images[0]!, b.images[0]!];
    expect(imgB.layers.slice(0, 2).map((l) => l.digest)).toEqual(imgA.layers.slice(0, 2).map((l) => l.digest));
    expect(imgB.layers[2]!.digest).not.toBe(imgA.layers[2]!.digest);
    expect(gunzipSync(imgA.layers[2]!.bytes).includes('marker-tooling-app-a')).toBe(true);
    expect(imgA.config.bytes.includes('cfg-tooling-app-a')).toBe(true);
  });

  it('skopeo copy in, docker load, push to another repo, rmi, pull back: the digests agree', async () => {
    const layoutDir = path.join(work, 'three');
    const layout = await buildOciLayout(layoutDir, {
      tag: 'v1',
      image: { layers: [...BASE, { seed: 'tooling-three', size: 64 * KiB, marker: 'three' }], configMarker: 'three' },
    });
    const image = layout.images[0]!;
    const skopeo = await freshSkopeo(work);

    // skopeo keeps the OCI manifest byte for byte.
    expect(await skopeoCopyToRegistry(skopeo, layoutDir, 'v1', registry.hostPort, 'tooling/skopeo', 'v1')).toBe(layout.digest);
    const raw = await skopeoInspectRaw(skopeo, `${registry.hostPort}/tooling/skopeo:v1`);
    expect(raw.bytes.equals(image.manifest.bytes)).toBe(true);

    // docker stores layers uncompressed and gzips them again on push, so its manifest (Docker
    // schema 2) has other layer digests; the config, and so the image ID, are kept as built.
    const ref = `${registry.hostPort}/tooling/docker:v1`;
    const cli = docker(dockerHost);
    const imageId = async () => (await cli(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
    await dockerLoadFromLayout(skopeo, dockerHost, layoutDir, 'v1', ref);
    expect(await imageId()).toBe(image.config.digest);
    const pushed = await dockerPush(dockerHost, ref);
    expect(await dockerImageDigest(dockerHost, ref)).toBe(pushed);
    expect((await skopeoInspectRaw(skopeo, ref)).digest).toBe(pushed);

    await dockerRmi(dockerHost, ref);
    expect((await cli(['image', 'ls', '--quiet', ref])).stdout.trim()).toBe('');
    expect(await dockerPull(dockerHost, ref)).toBe(pushed);
    expect(await dockerImageDigest(dockerHost, ref)).toBe(pushed);
    expect(await imageId()).toBe(image.config.digest);
    await dockerRmi(dockerHost, ref);
  }, TIMEOUT);

  it('skopeo copy --all of a multi-arch index: inspected back raw with the identical digest', async () => {
    const layoutDir = path.join(work, 'multi');
    const layout = await buildOciLayout(layoutDir, {
      tag: 'v1',
      index: [
        { architecture: 'amd64', layers: [...BASE, { seed: 'tooling-multi-amd64', size: 16 * KiB }] },
        { architecture: 'arm64', layers: [{ seed: 'tooling-multi-arm64', size: 128 * KiB }] },
      ],
    });
    const skopeo = await freshSkopeo(work);
    expect(await skopeoCopyToRegistry(skopeo, layoutDir, 'v1', registry.hostPort, 'tooling/multi', 'v1', { all: true })).toBe(layout.digest);
    const raw = await skopeoInspectRaw(skopeo, `${registry.hostPort}/tooling/multi:v1`);
    expect(raw.digest).toBe(layout.index!.digest);
    expect(raw.bytes.equals(layout.index!.bytes)).toBe(true);
    for (const child of layout.images) {
      const back = await skopeoInspectRaw(skopeo, `${registry.hostPort}/tooling/multi@${child.manifest.digest}`);
      expect(back.bytes.equals(child.manifest.bytes)).toBe(true);
    }
  }, TIMEOUT);

  it('startDistribution runs on S3 (the test Swift)', async () => {
    const endpoint = new URL(inject('swiftEndpoint'));
    const bucket = `drreg-tooling-${Date.now()}`;
    const s3 = new Client({ endPoint: endpoint.hostname, port: Number(endpoint.port), useSSL: false, pathStyle: true, ...SWIFT_CREDENTIALS });
    await s3.makeBucket(bucket, SWIFT_CREDENTIALS.region); // Distribution does not create it
    const onS3 = await startDistribution({ s3: { endpoint: endpoint.origin, bucket, ...SWIFT_CREDENTIALS, rootDirectory: '/dist' } }).catch(async (err) => {
      await s3.removeBucket(bucket);
      throw err;
    });
    try {
      const layoutDir = path.join(work, 's3');
      const layout = await buildOciLayout(layoutDir, { tag: 'v1', image: { layers: [{ seed: 'tooling-s3', size: 64 * KiB }] } });
      const skopeo = await freshSkopeo(work);
      await skopeoCopyToRegistry(skopeo, layoutDir, 'v1', onS3.hostPort, 'tooling/s3', 'v1');
      expect((await skopeoInspectRaw(skopeo, `${onS3.hostPort}/tooling/s3:v1`)).digest).toBe(layout.digest);
      const keys: string[] = [];
      for await (const obj of s3.listObjectsV2(bucket, 'dist/', true)) if (obj.name) keys.push(obj.name);
      expect(keys.some((k) => k.includes(layout.images[0]!.layers[0]!.digest.slice(7)))).toBe(true);
    } finally {
      await onS3.stop();
      const keys: string[] = [];
      for await (const obj of s3.listObjectsV2(bucket, '', true)) if (obj.name) keys.push(obj.name);
      await s3.removeObjects(bucket, keys);
      await s3.removeBucket(bucket);
    }
  }, TIMEOUT);

  it('ensureDockerd: a private daemon answers, and stop() leaves no process, mount or directory', async () => {
    const daemon = await ensureDockerd();
    const dir = path.dirname(new URL(daemon.host).pathname);
    try {
      expect((await docker(daemon.host)(['info', '--format', '{{.Driver}}'])).stdout.trim()).toBe('vfs');
    } finally {
      await daemon.stop();
    }
    expect(isRunning(daemon.pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  }, TIMEOUT);
});
