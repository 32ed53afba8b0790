// Storage usage: what the repositories hold (logical bytes, each repository counting every blob it
// links) against what the store really holds (each blob once). Their ratio is the dedup saving.
import type { OpOptions } from '../storage/driver.js';
import * as paths from './paths.js';
import type { Registry } from './registry.js';

export interface RepositoryUsage {
  name: string;
  /** Sum of the sizes of the blobs and manifests this repository links. */
  logicalBytes: number;
  blobs: number;
  manifests: number;
}

export interface StorageUsage {
  repositories: RepositoryUsage[];
  /** Sum over repositories: what storing every repository separately would take. */
  logicalBytes: number;
  /** Sum of the distinct blobs' sizes. */
  uniqueBytes: number;
  /** Every object in the store: blob data, indexes, links, tags, upload state. */
  storedBytes: number;
}

export async function storageUsage(registry: Registry, options?: OpOptions): Promise<StorageUsage> {
  const { store, blobs } = registry;
  const sizeOf = async (digest: string) => (await blobs.stat(digest, options))?.size ?? 0;
  const repositories: RepositoryUsage[] = [];
  for (const name of await registry.repositories.list()) {
    const usage: RepositoryUsage = { name, logicalBytes: 0, blobs: 0, manifests: 0 };
    for await (const obj of store.list(paths.layerLinksPrefix(name), options)) {
      const digest = paths.digestFromLinkKey(obj.key);
      if (!digest) continue;
      usage.blobs++;
      usage.logicalBytes += await sizeOf(digest);
    }
    for await (const obj of store.list(paths.manifestLinksPrefix(name), options)) {
      const digest = paths.digestFromLinkKey(obj.key);
      if (!digest) continue;
      usage.manifests++;
      usage.logicalBytes += await sizeOf(digest);
    }
    repositories.push(usage);
  }
  let uniqueBytes = 0;
  for await (const obj of store.list(paths.BLOBS_PREFIX, options)) {
    const digest = paths.digestFromBlobIndexKey(obj.key);
    if (digest) uniqueBytes += await sizeOf(digest);
  }
  let storedBytes = 0;
  for await (const obj of store.list('', options)) storedBytes += obj.size;
  const logicalBytes = repositories.reduce((n, r) => n + r.logicalBytes, 0);
  return { repositories, logicalBytes, uniqueBytes, storedBytes };
}
