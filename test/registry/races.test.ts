// Regressions for races between requests and replicas, each reproduced deterministically by
// writing the state a lost race would leave.
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as paths from '../../src/registry/paths.js';
import { readJson, writeJson } from '../../src/registry/objects.js';
import type { UploadState } from '../../src/registry/uploads.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { errorCode, pushBlob, sha256 } from '../http/client.js';

describe('races', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry?.stop());

  it('a chunk lost to a racing replica cannot be committed under its digest', async () => {
    const a = randomBytes(1000);
    const b = randomBytes(1000);
    const start = await fetch(`${registry.url}/v2/race/up/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const id = location.split('/').pop()!;
    expect((await fetch(`${registry.url}${location}`, { method: 'PATCH', body: a })).status).toBe(202);
    // Another replica's PATCH of the same size won the state write: the session now holds B.
    const state = (await readJson<UploadState>(registry.store, paths.uploadStateKey(id)))!;
    const partB = paths.uploadPartKey(id, 0, 'other');
    await registry.store.put(partB, b);
    await writeJson(registry.store, paths.uploadStateKey(id), { ...state, parts: [{ key: partB, size: b.length }] });

    const put = await fetch(`${registry.url}${location}?digest=${sha256(a)}`, { method: 'PUT' });
    expect(put.status).toBe(400);
    expect(errorCode(await put.text())).toBe('DIGEST_INVALID');
    expect((await fetch(`${registry.url}/v2/race/up/blobs/${sha256(a)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('a blob whose data vanished answers 404 BLOB_UNKNOWN, not a cut connection', async () => {
    const blob = randomBytes(5000);
    const digest = await pushBlob(registry.url, 'race/gone', blob);
    const index = (await readJson<{ parts: Array<{ key: string }> }>(registry.store, paths.blobIndexKey(digest)))!;
    await unlink(path.join(registry.root, ...index.parts[0]!.key.split('/')));
    const r = await fetch(`${registry.url}/v2/race/gone/blobs/${digest}`);
    expect(r.status).toBe(404);
    expect(errorCode(await r.text())).toBe('BLOB_UNKNOWN');
    // And a new push of the same content is not deduplicated into the broken blob.
    await pushBlob(registry.url, 'race/gone', blob);
    expect(Buffer.from(await (await fetch(`${registry.url}/v2/race/gone/blobs/${digest}`)).arrayBuffer()).equals(blob)).toBe(true);
  });

  it('the current recovery point survives history and pointer written in different orders', async () => {
    const tags = registry.registry.tags;
    const A = `sha256:${'a'.repeat(64)}`;
    const B = `sha256:${'b'.repeat(64)}`;
    await tags.set('race/tag', 'latest', A, new Date(100_000));
    await tags.set('race/tag', 'latest', B, new Date(101_000));
    // Replica 1's pointer write (A) landed after replica 2's (B).
    await writeJson(registry.store, paths.currentTagKey('race/tag', 'latest'), { digest: A, pushedAt: new Date(100_000).toISOString() });
    const points = await registry.registry.recoveryPoints.list('race/tag');
    expect(points.filter((p) => p.current).map((p) => p.digest)).toEqual([A]);
  });
});
