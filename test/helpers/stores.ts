// The stores integration tests run on: the embedded filesystem and S3 on real Swift. Each factory
// gives a fresh, empty store and a cleanup that removes everything.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ObjectStore } from '../../src/storage/driver.js';
import { FilesystemStore } from '../../src/storage/filesystem.js';

export interface StoreFactory {
  name: string;
  make(): Promise<{ store: ObjectStore; cleanup(): Promise<void> }>;
}

export function filesystemFactory(): StoreFactory {
  return {
    name: 'filesystem',
    async make() {
      const root = await mkdtemp(path.join(tmpdir(), 'drreg-store-'));
      return { store: new FilesystemStore({ root, fsync: false }), cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  };
}

export function storeFactories(): StoreFactory[] {
  return [filesystemFactory()];
}
