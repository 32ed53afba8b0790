// The contract suite on the filesystem driver, in a fresh temp dir. Leftovers are every file and
// directory under the root except the root's own .tmp dir: a temp file of an aborted write, or a
// directory that deletes did not prune, fails the suite.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
