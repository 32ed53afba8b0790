// The contract suite on the filesystem driver, in a fresh temp dir. Leftovers are every file and
// directory under the root except the root's own .tmp dir: a temp file of an aborted write, or a
// directory that deletes did not prune, fails the suite.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FilesystemStore } from '../../src/storage/filesystem.js';
import { defineStorageSuite } from './suite.js';

defineStorageSuite('filesystem', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'drreg-suite-fs-'));
  const store = new FilesystemStore({ root, fsync: false });
  await store.check();
  return {
    store,
    cleanup: () => rm(root, { recursive: true, force: true }),
    leftovers: async () => {
      const entries = await readdir(root, { recursive: true, withFileTypes: true });
      return entries
        .map((e) => path.relative(root, path.join(e.parentPath, e.name)) + (e.isDirectory() ? '/' : ''))
        .filter((name) => name !== '.tmp/')
        .sort();
    },
  };
});

describe('filesystem: a put racing deletes that prune its folder', () => {
  it('retries the folder, but fails at once where a file stands in the way', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'drreg-suite-fs-'));
    const store = new FilesystemStore({ root, fsync: false });
    try {
      await store.put('a/file', Buffer.from('x'));
      // Node's recursive mkdir answers ENOTDIR both for a file in the way and for a parent pruned
      // by a racing delete; only the second is retried (the churn test above covers that race).
      const started = Date.now();
      await expect(store.put('a/file/child', Buffer.from('y'))).rejects.toThrow();
      // The retries back off to 10 ms each, about a second in all: one attempt is far below.
      expect(Date.now() - started).toBeLessThan(900);
      expect((await readdir(path.join(root, '.tmp'))).length).toBe(0);
      expect((await store.stat('a/file'))?.size).toBe(1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
