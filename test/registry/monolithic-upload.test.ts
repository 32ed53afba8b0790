// A monolithic upload (POST ?digest= with the body) is what volume pushes send for every chunk.
// Its session exists only to keep the collector off its part until the blob index refers to it:
// the registry writes it once and never reads it back, and a failed upload leaves nothing behind.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/storage/driver.js';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { assertNoPartialBlobs, errorCode, unreferencedParts } from '../http/client.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('monolithic uploads', () => {
  let root: string;
  let store: FilesystemStore;
  let registry: TestRegistry;
  /** Store calls by kind and top-level prefix ("get uploads/"), counted below the registry. */
  const calls: Record<string, number> = {};

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'drreg-mono-'));
    store = new FilesystemStore({ root, fsync: false });
    const counted = Object.create(store) as ObjectStore;
    for (const op of ['get', 'put', 'stat', 'delete'] as const) {
      const inner = store[op].bind(store) as (...args: unknown[]) => unknown;
      (counted as unknown as Record<string, unknown>)[op] = (...args: unknown[]) => {
        const kind = `${op} ${String(args[0]).split('/')[0]}/`;
        calls[kind] = (calls[kind] ?? 0) + 1;
        return inner(...args);
      };
    }
    registry = await startTestRegistry({ store: counted });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    for (const k of Object.keys(calls)) delete calls[k];
  });

  const post = (repo: string, digest: string, body?: Buffer) =>
    fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });

  it('stores the blob with its session written once and never read back', async () => {
    const bytes = randomBytes(300 * 1024);
    const res = await post('mono/a', digestOf(bytes), bytes);
    expect(res.status).toBe(201);
    // The session is written once and deleted; before, it was read back twice and rewritten.
    expect(calls['put uploads/']).toBe(1);
    expect(calls['get uploads/'] ?? 0).toBe(0);
    expect(calls['delete uploads/']).toBe(1);
    expect(calls['put data/']).toBe(1);
    const pulled = await fetch(`${registry.url}/v2/mono/a/blobs/${digestOf(bytes)}`);
    expect(Buffer.from(await pulled.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('leaves nothing behind for a wrong digest, and stores an empty blob without a part', async () => {
    const bytes = randomBytes(64 * 1024);
    const wrong = await post('mono/b', digestOf(randomBytes(8)), bytes);
    expect(wrong.status).toBe(400);
    expect(errorCode(await wrong.text())).toBe('DIGEST_INVALID');

    const empty = Buffer.alloc(0);
    expect((await post('mono/b', digestOf(empty))).status).toBe(201);
    expect((await fetch(`${registry.url}/v2/mono/b/blobs/${digestOf(empty)}`, { method: 'HEAD' })).headers.get('content-length')).toBe('0');

    const sessions: string[] = [];
    for await (const obj of store.list('uploads/')) sessions.push(obj.key);
    expect(sessions).toEqual([]);
    expect(await unreferencedParts(store)).toEqual([]);
    expect(await assertNoPartialBlobs(store)).toBeGreaterThan(0);
  });
});
