// End-to-end with the real clients: the docker daemon and CLI, and skopeo, against the real
// server on filesystem and on S3 over Swift.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObjectStore } from '../../src/storage/driver.js';
import { startTestRegistry, type RequestLine, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { docker, freshSkopeo } from './clients.js';
import { buildImage, buildIndex, writeLayout, type LayerSpec } from './images.js';

const MiB = 1024 * 1024;
const BASE: LayerSpec[] = [
  { seed: 'e2e-base-os', size: 3 * MiB },
  { seed: 'e2e-base-web', size: 2 * MiB },
];

const keyringDir = mkdtempSync(path.join(tmpdir(), 'drreg-e2e-keyring-'));
const backends = [
  { name: 'filesystem', env: (): Record<string, string> => ({}), cleanup: async () => {} },
  {
    // Encrypted at rest: the clients must see exactly the same digests.
    name: 'encrypted filesystem',
    env: (): Record<string, string> => {
      const file = path.join(keyringDir, 'keyring.yml');
      writeFileSync(file, `active: k1\nkeys:\n  k1: ${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      return { DRREG_ENCRYPTION_KEYRING: file };
    },
    cleanup: () => rm(keyringDir, { recursive: true, force: true }),
  },
  (() => {
    const options = swiftOptions();
    return {
      name: 's3 on Swift',
      env: (): Record<string, string> => ({
        DRREG_STORAGE_DRIVER: 's3',
        DRREG_STORAGE_S3_ENDPOINT: options.endpoint,
        DRREG_STORAGE_S3_BUCKET: options.bucket,
        DRREG_STORAGE_S3_ACCESSKEY: options.accessKey,
        DRREG_STORAGE_S3_SECRETKEY: options.secretKey,
      }),
      cleanup: () => removeBucket(options),
    };
  })(),
];

/** Bytes under data/ (what is stored) and the sizes of the distinct blobs (what must be). */
async function storedVersusUnique(store: ObjectStore): Promise<{ stored: number; unique: number }> {
  let stored = 0;
  for await (const obj of store.list('data/')) stored += obj.size;
  let unique = 0;
  for await (const obj of store.list('blobs/')) {
    const index = JSON.parse((await readAll(await store.get(obj.key))).toString()) as { size: number };
    unique += index.size;
  }
  return { stored, unique };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const uploadedBytes = (requests: RequestLine[]) =>
  requests.filter((r) => r.path.includes('/blobs/uploads/') && r.method !== 'GET').reduce((n, r) => n + r.bytesIn, 0);

describe.each(backends)('real clients on $name', (backend) => {
  let registry: TestRegistry;
  let work: string;
  const requests: RequestLine[] = [];
  const dockerHost = inject('dockerHost');
  const dockerCli = docker(dockerHost);

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-e2e-'));
    registry = await startTestRegistry({ env: backend.env(), requests });
  });
  afterAll(async () => {
    await registry?.stop();
    await backend.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  /** Loads an OCI layout into the daemon under `name` (skopeo's docker-daemon transport). */
  async function loadIntoDocker(layout: string, tag: string, name: string) {
    const skopeo = await freshSkopeo(work);
    await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${layout}:${tag}`, `docker-daemon:${name}`]);
  }

  it('docker: push a multi-layer image, remove it, pull it back with the same digest', async () => {
    const image = buildImage([...BASE, { seed: 'e2e-sys-a', size: 256 * 1024, marker: 'system A' }]);
    await writeLayout(path.join(work, 'sys-a'), 'v1', { image });
    const ref = `${registry.hostPort}/dr/sys-a:v1`;
    await loadIntoDocker(path.join(work, 'sys-a'), 'v1', ref);
    const pushed = await dockerCli(['push', ref]);
    const pushedDigest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    expect(pushedDigest).toBeDefined();
    await dockerCli(['rmi', ref]);
    const pulled = await dockerCli(['pull', ref]);
    expect(/Digest: (sha256:[0-9a-f]{64})/.exec(pulled.stdout)?.[1]).toBe(pushedDigest);
    const repoDigests = (await dockerCli(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])).stdout;
    expect(repoDigests).toContain(`${registry.hostPort}/dr/sys-a@${pushedDigest}`);
  }, 300_000);

  it('docker: a second system sharing the base does not re-send it, and the store holds each layer once', async () => {
    const image = buildImage([...BASE, { seed: 'e2e-sys-b', size: 256 * 1024 }]);
    await writeLayout(path.join(work, 'sys-b'), 'v1', { image });
    const ref = `${registry.hostPort}/dr/sys-b:v1`;
    await loadIntoDocker(path.join(work, 'sys-b'), 'v1', ref);
    const before = requests.length;
    await dockerCli(['push', ref]);
    const sent = uploadedBytes(requests.slice(before));
    expect(sent).toBeGreaterThan(0); // its own layer and config
    expect(sent).toBeLessThan(2 * MiB); // but neither base layer (3 MiB and 2 MiB before gzip)
    // The base came by reference: a HEAD that linked it (dedup.linkExistingOnHead, on by default)
    // or a cross-repository mount.
    const linked = (r: (typeof requests)[number]) =>
      (r.method === 'HEAD' && r.status === 200 && r.path.includes('/dr/sys-b/blobs/')) || (r.method === 'POST' && r.status === 201);
    expect(requests.slice(before).some(linked)).toBe(true);
    const { stored, unique } = await storedVersusUnique(registry.store);
    expect(stored).toBe(unique);
  }, 300_000);

  it('skopeo: an OCI index (multi-arch) round trip with --all keeps every digest', async () => {
    const amd64 = buildImage([...BASE, { seed: 'e2e-multi-amd64', size: 64 * 1024 }], { architecture: 'amd64' });
    const arm64 = buildImage([{ seed: 'e2e-multi-arm64-base', size: 512 * 1024 }], { architecture: 'arm64' });
    const index = buildIndex([
      { image: amd64, architecture: 'amd64' },
      { image: arm64, architecture: 'arm64' },
    ]);
    const src = path.join(work, 'multi');
    await writeLayout(src, 'v1', { index, images: [amd64, arm64] });
    const skopeo = await freshSkopeo(work);
    const remote = `docker://${registry.hostPort}/dr/multi:v1`;
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${src}:v1`, remote]);
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', remote])).stdout;
    expect(Buffer.from(raw).equals(index.bytes)).toBe(true);

    const out = path.join(work, 'multi-back');
    await skopeo(['copy', '--all', '--src-tls-verify=false', remote, `oci:${out}:v1`]);
    const layoutIndex = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(layoutIndex.manifests[0]!.digest).toBe(index.digest);
    for (const child of [amd64, arm64]) {
      const back = await readFile(path.join(out, 'blobs', 'sha256', child.manifest.digest.slice(7)));
      expect(back.equals(child.manifest.bytes)).toBe(true);
    }
  }, 300_000);
});
