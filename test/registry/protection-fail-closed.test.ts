// Protection must fail closed: when the store cannot read a locked point's manifest (a store
// error, not "no such manifest"), nothing the manifest may reach can be unlinked. Before the fix
// such an error counted as "the manifest references nothing", so DELETE /v2/<name>/blobs/<digest>
// removed a layer of a locked point whenever a read failed: a client with delete rights had only
// to retry during a store hiccup. The fault here is real: the manifest's blob index on the
// filesystem replaced by a directory (EISDIR), with a restart so nothing is cached.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { blobIndexKey } from '../../src/registry/paths.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, pushImage, putManifest } from '../http/client.js';

let registry: TestRegistry | undefined;
let root: string;
afterAll(async () => {
  await registry?.stop();
  await rm(root, { recursive: true, force: true });
});

it('a layer of a locked point is not unlinked when its manifest cannot be read', async () => {
  root = await mkdtemp(path.join(tmpdir(), 'drreg-failclosed-'));
  const env = { DRREG_RETENTION_LOCK: '14d' };
  registry = await startTestRegistry({ root, env });
  const repo = 'dr/app';
  const image = await pushImage(registry.url, repo, 'locked');
  const put = await putManifest(registry.url, repo, 'latest', image, OCI_MANIFEST);
  expect(put.res.status).toBe(201);
  // Move the tag away: the point is locked, but no longer current.
  const other = await putManifest(registry.url, repo, 'latest', await pushImage(registry.url, repo, 'other'), OCI_MANIFEST);
  expect(other.res.status).toBe(201);
  await registry.stop();

  const index = path.join(root, blobIndexKey(put.digest));
  await rm(index, { force: true });
  await mkdir(index); // reading it now fails with EISDIR
  registry = await startTestRegistry({ root, env });

  const layer = image.layers[0]!.digest;
  const del = await fetch(`${registry.url}/v2/${repo}/blobs/${layer}`, { method: 'DELETE' });
  const text = await del.text();
  expect(del.status, text).not.toBe(202);
  expect(JSON.parse(text).errors[0].code, text).toMatch(/^[A-Z_]+$/);
  // The link is still there.
  await rm(index, { recursive: true });
  const head = await fetch(`${registry.url}/v2/${repo}/blobs/${layer}`, { method: 'HEAD' });
  expect(head.status).toBe(200);
});
