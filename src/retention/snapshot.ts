// What retention and the collector need to know of one repository, read from the store in one
// pass: its manifests (with what each references), layer links, tags, recovery points (kept and
// pruned) and pins. Listing times stand in for link and prune times, so most of it is listings.
import { parseManifest } from '../registry/manifest-format.js';
import type { ManifestLink } from '../registry/manifests.js';
import { readAll, readJson } from '../registry/objects.js';
import * as paths from '../registry/paths.js';
import type { Registry } from '../registry/registry.js';
import { isNotFound } from '../storage/errors.js';
import { STORE_PARALLELISM, forEachLimit } from './concurrency.js';

export interface ManifestInfo {
  digest: string;
  /** When the link was last written (push, or a refresh by a use). */
  linkedAtMs: number;
  subject?: string;
  /** Child manifests (of an index). */
  children: string[];
  /** Config and layers. */
  blobs: string[];
}

export interface PointEntry {
  tag: string;
  digest: string;
  pushedAtMs: number;
  key: string;
}

export interface PrunedEntry extends PointEntry {
  prunedAtMs: number;
}

export interface RepositorySnapshot {
  name: string;
  manifests: Map<string, ManifestInfo>;
  /** Layer link digest -> when the link was last written. */
  layerLinks: Map<string, number>;
  /** Tag -> digest it points at now. */
  current: Map<string, string>;
  history: PointEntry[];
  pruned: PrunedEntry[];
  pins: Set<string>;
  /** Manifests deleted through the API: the points and pins naming them keep nothing alive. */
  deleted: Set<string>;
}

export async function loadSnapshot(registry: Registry, name: string): Promise<RepositorySnapshot> {
  const { store } = registry;
  const snapshot: RepositorySnapshot = {
    name,
    manifests: new Map(),
    layerLinks: new Map(),
    current: new Map((await registry.tags.list(name)).map((t) => [t.tag, t.digest])),
    history: [],
    pruned: [],
    pins: new Set(),
    deleted: new Set(),
  };

  const links: Array<{ digest: string; linkedAtMs: number }> = [];
  for await (const obj of store.list(paths.manifestLinksPrefix(name))) {
    const digest = paths.digestFromLinkKey(obj.key);
    if (digest) links.push({ digest, linkedAtMs: obj.modified.getTime() });
  }
  // Three round trips per manifest (link, index, bytes): several manifests at once.
  await forEachLimit(links, STORE_PARALLELISM, async ({ digest, linkedAtMs }) => {
    const info = await readManifestInfo(registry, name, digest, linkedAtMs);
    if (info) snapshot.manifests.set(digest, info);
  });
  // Deletion markers after links: a delete through the API writes its marker before it removes
  // the link, so a link found missing above has its marker seen here (or was lost to a race).
  for await (const obj of store.list(paths.deletedManifestsPrefix(name))) {
    const digest = paths.digestFromLinkKey(obj.key);
    if (digest) snapshot.deleted.add(digest);
  }
  for await (const obj of store.list(paths.layerLinksPrefix(name))) {
    const digest = paths.digestFromLinkKey(obj.key);
    if (digest) snapshot.layerLinks.set(digest, obj.modified.getTime());
  }
  for await (const obj of store.list(paths.tagHistoryRoot(name))) {
    const parsed = paths.parseTagHistoryKey(name, obj.key);
    if (parsed) snapshot.history.push({ ...parsed, key: obj.key });
  }
  for await (const obj of store.list(paths.prunedRoot(name))) {
    const parsed = paths.parsePrunedKey(name, obj.key);
    if (parsed) snapshot.pruned.push({ ...parsed, key: obj.key, prunedAtMs: obj.modified.getTime() });
  }
  for await (const obj of store.list(paths.pinsPrefix(name))) {
    const digest = paths.digestFromLinkKey(obj.key);
    if (digest) snapshot.pins.add(digest);
  }
  return snapshot;
}

/**
 * A manifest's references. A link whose bytes are gone has none to protect (it is already broken)
 * and is reported without references; any other failure (an unreadable or undecryptable store)
 * propagates: the collector must stop rather than think a manifest references nothing.
 */
async function readManifestInfo(registry: Registry, repo: string, digest: string, linkedAtMs: number): Promise<ManifestInfo | undefined> {
  const link = await readJson<ManifestLink>(registry.store, paths.manifestLinkKey(repo, digest));
  if (!link) return undefined; // deleted between the listing and now
  // From the store, not the cache: another replica may have collected and re-pushed it.
  const index = await registry.blobs.read(digest);
  if (!index) return { digest, linkedAtMs, children: [], blobs: [] };
  let bytes: Buffer;
  try {
    bytes = await readAll(await registry.blobs.open(index, undefined));
  } catch (err) {
    if (isNotFound(err) || (err as { code?: string }).code === 'BLOB_UNKNOWN') return { digest, linkedAtMs, children: [], blobs: [] };
    throw err;
  }
  const parsed = parseManifest(bytes, link.mediaType);
  return {
    digest,
    linkedAtMs,
    subject: parsed.subject?.digest,
    children: parsed.manifests.map((m) => m.digest),
    blobs: parsed.blobs.map((b) => b.digest), // foreign layers too: marking a blob we lack costs nothing
  };
}
