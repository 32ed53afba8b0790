// Hostile and damaged snapshots: a corrupted chunk, a missing chunk, a truncated tree, paths with
// '..' or absolute, a symlink escaping DEST followed by a write through it, hard links to what
// was not restored: each a clear error, and nothing is written outside DEST.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, sha256 } from '../../src/client/registry-client.js';
import {
  ARTIFACT_TYPE,
  CHUNK_MEDIA_TYPE,
  CONFIG_MEDIA_TYPE,
  encodeTree,
  OCI_MANIFEST,
  TREE_MEDIA_TYPE,
  type Entry,
  type Tree,
} from '../../src/volumes/format.js';
import { pullVolume } from '../../src/volumes/pull.js';
import { pushVolume } from '../../src/volumes/push.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { listAll } from './trees.js';

const meta = { m: 0o644, u: 0, g: 0, mt: '1700000000000000000' };
const file = (p: string, data: string): Entry => ({ p, t: 'f', ...meta, sz: Buffer.byteLength(data), e: data ? [[0, 0, Buffer.byteLength(data)]] : [] });

describe('hostile and damaged snapshots', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  let work: string;
  let outside: string;
  let n = 0;

  /** Pushes a snapshot made by hand: `treeBytes` as its tree, `chunk` its one chunk. */
  async function craft(tag: string, tree: Tree | Buffer, chunk = Buffer.from('hello')): Promise<void> {
    const repo = 'hostile/vol';
    const treeBytes = Buffer.isBuffer(tree) ? tree : encodeTree(tree);
    const config = Buffer.from(JSON.stringify({ version: 1, created: new Date().toISOString(), source: 'crafted', hostname: 'x', files: 1, totalBytes: chunk.length, chunks: { min: 1, avg: 1, max: 1 } }));
    for (const b of [treeBytes, config, chunk]) await client.putBlob(repo, sha256(b), b);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: ARTIFACT_TYPE,
      config: { mediaType: CONFIG_MEDIA_TYPE, digest: sha256(config), size: config.length },
      layers: [
        { mediaType: TREE_MEDIA_TYPE, digest: sha256(treeBytes), size: treeBytes.length },
        { mediaType: CHUNK_MEDIA_TYPE, digest: sha256(chunk), size: chunk.length },
      ],
    };
    await client.putManifest(repo, tag, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
  }

  const chunkTable = (chunk = Buffer.from('hello')) => [{ d: sha256(chunk), s: chunk.length, n: chunk.length }];

  /** Pulls `tag` into a fresh DEST; expects `message`; checks nothing appeared outside DEST. */
  async function expectRefused(tag: string, message: RegExp, repo = 'hostile/vol'): Promise<void> {
    const before = listAll(work).filter((p) => !Buffer.from(p, 'base64').toString().startsWith('dest-'));
    const dest = path.join(work, `dest-${n++}`);
    await expect(pullVolume({ client, repo, reference: tag, dest })).rejects.toThrow(message);
    const after = listAll(work).filter((p) => !Buffer.from(p, 'base64').toString().startsWith('dest-'));
    expect(after).toEqual(before);
    expect(listAll(outside)).toEqual([]);
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-vol-hostile-'));
    outside = path.join(work, 'outside');
    mkdirSync(outside);
    registry = await startTestRegistry();
    client = new RegistryClient({ registry: registry.hostPort });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** The stored file holding a blob's bytes (filesystem store: its index lists the parts). */
  function blobPartFile(digest: string): string {
    const hex = digest.slice('sha256:'.length);
    const index = JSON.parse(readFileSync(path.join(registry.root, 'blobs/sha256', hex.slice(0, 2), hex, 'index'), 'utf8')) as { parts: { key: string }[] };
    return path.join(registry.root, index.parts[0]!.key);
  }

  it('a corrupted chunk is refused', async () => {
    const src = path.join(work, 'src-corrupt');
    mkdirSync(src);
    writeFileSync(path.join(src, 'a'), 'corrupt me '.repeat(100_000));
    const pushed = await pushVolume({ client, repo: 'hostile/corrupt', tag: 'v1', dir: src });
    const tree = (await import('../../src/volumes/snapshot.js')).loadSnapshot;
    const snap = (await tree(client, 'hostile/corrupt', pushed.digest))!;
    const part = blobPartFile(snap.tree.chunks[0]!.d);
    const bytes = readFileSync(part);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    writeFileSync(part, bytes);
    await expectRefused('v1', /corrupt/, 'hostile/corrupt');
  });

  it('a missing chunk is refused', async () => {
    const src = path.join(work, 'src-missing');
    mkdirSync(src);
    writeFileSync(path.join(src, 'a'), 'lose me '.repeat(100_000));
    const pushed = await pushVolume({ client, repo: 'hostile/missing', tag: 'v1', dir: src });
    const snap = (await (await import('../../src/volumes/snapshot.js')).loadSnapshot(client, 'hostile/missing', pushed.digest))!;
    const hex = snap.tree.chunks[0]!.d.slice('sha256:'.length);
    // Gone from the store as the collector removes it: the index and the data parts it lists
    // (the registry may still hold the index in its cache; the parts decide).
    const indexFile = path.join(registry.root, 'blobs/sha256', hex.slice(0, 2), hex, 'index');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { parts: Array<{ key: string }> };
    for (const part of index.parts) await unlink(path.join(registry.root, part.key));
    await unlink(indexFile);
    await expectRefused('v1', /BLOB_UNKNOWN|404/, 'hostile/missing');
  });

  it('a truncated tree is refused', async () => {
    const whole = encodeTree({ chunks: chunkTable(), entries: [file('a', 'hello')] });
    await craft('truncated-gzip', whole.subarray(0, whole.length - 10));
    await expectRefused('truncated-gzip', /truncated or corrupt/);
    const lines = [JSON.stringify({ v: 1, chunks: 1, entries: 3 }), JSON.stringify(chunkTable()[0]), JSON.stringify(file('a', 'hello'))];
    await craft('truncated-records', gzipSync(lines.join('\n')));
    await expectRefused('truncated-records', /truncated/);
  });

  it("paths with '..', absolute paths and NUL bytes are refused", async () => {
    await craft('dotdot', { chunks: chunkTable(), entries: [file('../outside/escaped', 'hello')] });
    await expectRefused('dotdot', /'\.\.'/);
    await craft('dotdot-inner', { chunks: chunkTable(), entries: [{ p: 'x', t: 'd', ...meta }, file('x/../../outside/escaped', 'hello')] });
    await expectRefused('dotdot-inner', /'\.\.'/);
    await craft('absolute', { chunks: chunkTable(), entries: [file(`${outside}/escaped`, 'hello')] });
    await expectRefused('absolute', /absolute path/);
    await craft('nul', { chunks: chunkTable(), entries: [{ ...file('a', 'hello'), p: undefined, pb: Buffer.from('a\0b').toString('base64') }] });
    await expectRefused('nul', /NUL/);
  });

  it('a symlink escaping DEST cannot be written through', async () => {
    // The symlink itself is restorable; a file "inside" it is not, in whichever order they come.
    await craft('symlink-escape', { chunks: chunkTable(), entries: [{ p: 'evil', t: 'l', ...meta, l: outside }, file('evil/pwned', 'hello')] });
    await expectRefused('symlink-escape', /not inside a directory of the snapshot/);
    await craft('symlink-escape-rel', { chunks: chunkTable(), entries: [{ p: 'evil', t: 'l', ...meta, l: '../outside' }, { p: 'evil', t: 'd', ...meta }, file('evil/pwned', 'hello')] });
    await expectRefused('symlink-escape-rel', /appears twice/);
    await craft('symlink-then-dir', { chunks: chunkTable(), entries: [{ p: 'evil', t: 'l', ...meta, l: '../outside' }, { p: 'evil/sub', t: 'd', ...meta }] });
    await expectRefused('symlink-then-dir', /not inside a directory of the snapshot/);
  });

  it('hard links may only point at files restored before them', async () => {
    await craft('hardlink-out', { chunks: chunkTable(), entries: [{ p: 'h', t: 'h', ...meta, h: '../outside/x' }] });
    await expectRefused('hardlink-out', /'\.\.'/);
    await craft('hardlink-symlink', { chunks: chunkTable(), entries: [{ p: 'evil', t: 'l', ...meta, l: '/etc/passwd' }, { p: 'h', t: 'h', ...meta, h: 'evil' }] });
    await expectRefused('hardlink-symlink', /not a file restored before it/);
  });

  it('extents outside their chunk or not covering the size are refused', async () => {
    await craft('extent', { chunks: chunkTable(), entries: [{ ...file('a', 'hello'), e: [[0, 3, 5]] }] });
    await expectRefused('extent', /extent outside its chunk/);
    await craft('size', { chunks: chunkTable(), entries: [{ ...file('a', 'hello'), sz: 99 }] });
    await expectRefused('size', /extents cover 5 bytes, size is 99/);
  });

  it('an xattr value cannot inject a record for a path outside DEST into the setfattr dump', async () => {
    // setfattr --restore reads "# file: PATH" records; a value with a newline would start one.
    const victim = path.join(work, 'victim');
    writeFileSync(victim, 'x');
    const evil = `aGk=\n\n# file: ${victim}\nuser.pwned=0scHduZWQ=\n`;
    await craft('xattr-inject', { chunks: chunkTable(), entries: [{ ...file('a', 'hello'), x: { 'user.ok': evil } }] });
    const dest = path.join(work, `dest-${n++}`);
    await expect(pullVolume({ client, repo: 'hostile/vol', reference: 'xattr-inject', dest })).rejects.toThrow(/xattr|base64/);
    expect(execFileSync('getfattr', ['-d', '--absolute-names', victim]).toString()).not.toMatch(/pwned/);
  });

  it('a chunk claiming more than 64 MiB (a gzip bomb, or memory for a cache) is refused', async () => {
    const bomb = gzipSync(Buffer.alloc(80 * 1024 * 1024));
    const n = 80 * 1024 * 1024;
    await craft('chunk-bomb', { chunks: [{ d: sha256(bomb), s: bomb.length, n, z: 1 }], entries: [{ ...file('a', ''), sz: n, e: [[0, 0, n]] }] }, bomb);
    await expectRefused('chunk-bomb', /more than 67108864/);
  });
});
