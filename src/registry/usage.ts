// Storage usage: what the repositories hold (logical bytes, each repository counting every blob it
// links) against what the store really holds (each blob once). Their ratio is the dedup saving.
import type { OpOptions } from '../storage/driver.js';
import * as paths from './paths.js';
import type { Registry } from './registry.js';

export interface RepositoryUsage {
  name: string;
  /** Sum of the sizes of the blobs and manifests this repository links. */
  logicalBytes: number;
  /** Stored bytes no other repository links: what removing this repository would free. */
  exclusiveBytes: number;
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
  const linkedBy = new Map<string, string[]>(); // digest -> repositories linking it
  for (const name of await registry.repositories.list()) {
    const usage: RepositoryUsage = { name, logicalBytes: 0, exclusiveBytes: 0, blobs: 0, manifests: 0 };
    for (const [prefix, kind] of [[paths.layerLinksPrefix(name), 'blobs'], [paths.manifestLinksPrefix(name), 'manifests']] as const) {
      for await (const obj of store.list(prefix, options)) {
        const digest = paths.digestFromLinkKey(obj.key);
        if (!digest) continue;
        usage[kind]++;
        usage.logicalBytes += await sizeOf(digest);
        linkedBy.set(digest, [...(linkedBy.get(digest) ?? []), name]);
      }
    }
    repositories.push(usage);
  }
  for (const [digest, holders] of linkedBy) {
    const only = new Set(holders);
    if (only.size === 1) repositories.find((r) => r.name === holders[0])!.exclusiveBytes += await sizeOf(digest);
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
