// Reading a snapshot back from a registry: the manifest (or the index over several part
// manifests), its config and its tree, every blob verified against its digest.
import type { RegistryClient } from '../client/registry-client.js';
import {
  ARTIFACT_TYPE,
  CONFIG_MEDIA_TYPE,
  decodeTree,
  FormatError,
  OCI_INDEX,
  OCI_MANIFEST,
  TREE_MEDIA_TYPE,
  type Descriptor,
  type SnapshotConfig,
  type Tree,
} from './format.js';

export interface Snapshot {
  digest: string;
  config: SnapshotConfig;
  tree: Tree;
  /** Every blob the snapshot references: part manifests, config, tree, chunks. */
  blobs: Descriptor[];
}

interface ManifestDoc {
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

function parse(bytes: Buffer, what: string): ManifestDoc {
  try {
    return JSON.parse(bytes.toString('utf8')) as ManifestDoc;
  } catch {
    throw new FormatError(`${what} is not JSON`);
  }
}

/** The snapshot at `reference` (tag or digest); undefined if the registry has no such manifest. */
export async function loadSnapshot(client: RegistryClient, repo: string, reference: string): Promise<Snapshot | undefined> {
  const top = await client.getManifest(repo, reference);
  if (!top) return undefined;
  const doc = parse(top.bytes, `manifest ${reference}`);
  if (doc.artifactType !== ARTIFACT_TYPE) {
    throw new FormatError(`${repo}:${reference} is not a volume snapshot (artifactType ${JSON.stringify(doc.artifactType ?? null)}, want ${ARTIFACT_TYPE})`);
  }
  let parts: ManifestDoc[];
  const blobs: Descriptor[] = [];
  if ((doc.mediaType ?? top.mediaType) === OCI_INDEX) {
    parts = [];
    for (const m of doc.manifests ?? []) {
      blobs.push(m);
      const part = await client.getManifest(repo, m.digest);
      if (!part) throw new FormatError(`snapshot part ${m.digest} is missing`);
      parts.push(parse(part.bytes, `snapshot part ${m.digest}`));
    }
  } else {
    if ((doc.mediaType ?? top.mediaType) !== OCI_MANIFEST) throw new FormatError(`unexpected manifest type ${doc.mediaType}`);
    parts = [doc];
  }
  const first = parts[0];
  if (!first?.config || first.config.mediaType !== CONFIG_MEDIA_TYPE) throw new FormatError('snapshot has no volume config');
  const config = JSON.parse((await client.getBlob(repo, first.config.digest)).toString('utf8')) as SnapshotConfig;
  if (config.version !== 1) throw new FormatError(`snapshot format version ${config.version} is not supported`);
  const treeDesc = first.layers?.find((l) => l.mediaType === TREE_MEDIA_TYPE);
  if (!treeDesc) throw new FormatError('snapshot has no tree');
  const tree = decodeTree(await client.getBlob(repo, treeDesc.digest));
  for (const p of parts) blobs.push(p.config!, ...(p.layers ?? []));
  return { digest: top.digest, config, tree, blobs };
}
