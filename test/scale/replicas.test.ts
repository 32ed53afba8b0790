// Stateless replicas: two registry processes on one store (one bucket, or one shared directory)
// behave as one registry. They share nothing else: caches and running hashes are per process.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistryProcess, type RegistryProcess } from '../helpers/process.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const s3 = swiftOptions();
const stores = [
  {
    name: 'filesystem',
    async env() {
      const root = await mkdtemp(path.join(tmpdir(), 'drreg-replicas-'));
      return { env: { DRREG_STORAGE_FILESYSTEM_ROOT: root, DRREG_STORAGE_FILESYSTEM_FSYNC: 'false' }, cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  },
  {
    name: 's3 on Swift',
    async env() {
      const env = {
        DRREG_STORAGE_DRIVER: 's3',
        DRREG_STORAGE_S3_ENDPOINT: s3.endpoint,
        DRREG_STORAGE_S3_BUCKET: s3.bucket,
        DRREG_STORAGE_S3_ACCESSKEY: s3.accessKey,
        DRREG_STORAGE_S3_SECRETKEY: s3.secretKey,
      };
      return { env, cleanup: () => removeBucket(s3) };
    },
  },
];

describe.each(stores)('two registry processes on one $name store', (backend) => {
  let cleanup: () => Promise<void>;
  let a: RegistryProcess;
  let b: RegistryProcess;

  beforeAll(async () => {
    const made = await backend.env();
    cleanup = made.cleanup;
    const env = { ...made.env, DRREG_CACHE_TAGTTL: '500ms' };
    a = await startRegistryProcess(env);
    b = await startRegistryProcess(env);
  }, 60_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await cleanup?.();
  });

  it('pulls through one what was pushed through the other', async () => {
    const layer = randomBytes(300_000);
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    for (const blob of [layer, config]) {
      const r = await fetch(`${a.url}/v2/sys/a/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob });
      expect(r.status).toBe(201);
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      }),
    );
    const put = await fetch(`${a.url}/v2/sys/a/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
    expect(put.status).toBe(201);

    const got = await fetch(`${b.url}/v2/sys/a/manifests/v1`, { headers: { Accept: OCI_MANIFEST } });
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(manifest)).toBe(true);
    const blob = await fetch(`${b.url}/v2/sys/a/blobs/${sha256(layer)}`);
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(sha256(layer));
  });

  it('continues and commits a chunked upload across both replicas', async () => {
    const whole = randomBytes(3 * 65536 + 17);
    const chunks = [whole.subarray(0, 65536), whole.subarray(65536, 3 * 65536), whole.subarray(3 * 65536)];
    const start = await fetch(`${a.url}/v2/sys/split/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    let location = start.headers.get('location')!;
    let offset = 0;
    const replicas = [a, b, a];
    for (const [i, chunk] of chunks.entries()) {
      const r = await fetch(`${replicas[i]!.url}${location}`, {
        method: 'PATCH',
        body: chunk,
        headers: { 'Content-Range': `${offset}-${offset + chunk.length - 1}`, 'Content-Type': 'application/octet-stream' },
      });
      expect(r.status).toBe(202);
      offset += chunk.length;
      expect(r.headers.get('range')).toBe(`0-${offset - 1}`);
      location = r.headers.get('location')!;
    }
    const status = await fetch(`${b.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${whole.length - 1}`);
    const done = await fetch(`${b.url}${location}?digest=${sha256(whole)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const back = await fetch(`${a.url}/v2/sys/split/blobs/${sha256(whole)}`);
    expect(Buffer.from(await back.arrayBuffer()).equals(whole)).toBe(true);
  });

  it('sees a tag moved by the other replica within the tag cache bound', async () => {
    const push = async (via: RegistryProcess, text: string) => {
      const config = Buffer.from(text);
      await fetch(`${via.url}/v2/sys/tagged/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', body: config });
      const m = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [],
        }),
      );
      const r = await fetch(`${via.url}/v2/sys/tagged/manifests/latest`, { method: 'PUT', body: m, headers: { 'Content-Type': OCI_MANIFEST } });
      expect(r.status).toBe(201);
      return r.headers.get('docker-content-digest');
    };
    const digestOf = async (via: RegistryProcess) =>
      (await fetch(`${via.url}/v2/sys/tagged/manifests/latest`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } })).headers.get(
        'docker-content-digest',
      );
    const first = await push(a, '{"n":1}');
    expect(await digestOf(b)).toBe(first); // b now caches "latest"
    const second = await push(a, '{"n":2}');
    await new Promise((r) => setTimeout(r, 600)); // the configured bound: 500 ms
    expect(await digestOf(b)).toBe(second);
  });
});
