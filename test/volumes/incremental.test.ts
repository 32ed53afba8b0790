// Incremental and deduplicated: after changing 1% of a tree's bytes in a few files, a push reads
// only the changed files and sends at most 2% of the tree; a second system with the same files in
// another repository sends under 1% (its chunks are mounted, not sent). The suite uses a 192 MiB
// tree with 64/128/1024 KiB chunks (2 GiB at the default sizes is measured by bench/volumes.ts):
// the changed chunks around each change are 8 times smaller, the tree and manifest (which grow
// with the number of chunks) a somewhat larger share.
import { createCipheriv, createHash } from 'node:crypto';
import { cpSync, mkdirSync, openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/client/registry-client.js';
import { pullVolume } from '../../src/volumes/pull.js';
import { pushVolume, type PushResult } from '../../src/volumes/push.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { compareTrees } from './trees.js';

const MiB = 1024 * 1024;
// The case is 2 GiB with 1 MiB chunks (about 2,000 chunks); this 192 MiB tree keeps that
// proportion with 64 KiB chunks (about 3,000), so what a change costs at its edges is comparable.
const sizes = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };
/**
 * Incompressible bytes that are the same on every run (AES-CTR keyed by the seed): chunk
 * boundaries, and so the bytes sent, do not change from run to run.
 */
const seededBytes = (seed: string, size: number) =>
  createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16)).update(Buffer.alloc(size));
const FILES = 12;
const FILE_SIZE = 16 * MiB;
const TOTAL = FILES * FILE_SIZE;

describe('incremental and deduplicated volume pushes', () => {
  let registry: TestRegistry;
  let work: string;
  let source: string;
  let first: PushResult;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-vol-incr-'));
    source = path.join(work, 'a');
    mkdirSync(source);
    for (let i = 0; i < FILES; i++) writeFileSync(path.join(source, `data-${i}.bin`), seededBytes(`data-${i}`, FILE_SIZE));
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('a 1% change in 3 files: only those files are read, at most 2% is sent', async () => {
    const client = new RegistryClient({ registry: registry.hostPort });
    first = await pushVolume({ client, repo: 'sys-a/data', tag: 'latest', dir: source, sizes });
    expect(first.totalBytes).toBe(TOTAL);
    expect(first.sentBytes).toBeGreaterThanOrEqual(TOTAL);
    // 1% of the bytes, in place, in three files.
    const changes = [
      { file: 1, at: 3 * MiB, size: Math.round(TOTAL * 0.005) },
      { file: 5, at: 9 * MiB, size: Math.round(TOTAL * 0.003) },
      { file: 3, at: 100, size: Math.round(TOTAL * 0.002) },
    ];
    for (const c of changes) {
      const fd = openSync(path.join(source, `data-${c.file}.bin`), 'r+');
      writeSync(fd, seededBytes(`change-${c.file}`, c.size), 0, c.size, c.at);
      closeSync(fd);
    }
    const second = await pushVolume({ client, repo: 'sys-a/data', tag: 'latest', dir: source, sizes });
    expect(second.parent).toBe(first.digest);
    expect(second.filesRead).toBe(3);
    expect(second.bytesRead).toBe(3 * FILE_SIZE);
    expect(second.sentBytes / TOTAL).toBeLessThanOrEqual(0.02);
    const dest = path.join(work, 'restored');
    await pullVolume({ client, repo: 'sys-a/data', reference: 'latest', dest });
    expect(compareTrees(source, dest)).toEqual([]);
  }, 300_000);

  it('a second system with the same files in another repository sends under 1%', async () => {
    const other = path.join(work, 'b');
    cpSync(source, other, { recursive: true });
    const client = new RegistryClient({ registry: registry.hostPort });
    const result = await pushVolume({ client, repo: 'sys-b/data', tag: 'latest', dir: other, sizes, mountFrom: ['sys-a/data'] });
    expect(result.filesRead).toBe(FILES);
    expect(result.mountedChunks).toBe(result.newChunks);
    expect(result.sentBytes / TOTAL).toBeLessThan(0.01);
  }, 300_000);
});
