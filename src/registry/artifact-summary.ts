// What a recovery point is, from its manifest: its artifactType (volume snapshots and system
// recovery points carry ours, images none) and, when the manifest says it, its logical size
// (the io.dr-registry.volume.size annotation: the bytes of the volume, not of the chunks).
import type { Registry } from './registry.js';

export interface ArtifactSummary {
  artifactType?: string;
  logicalSize?: number;
}

export const LOGICAL_SIZE_ANNOTATION = 'io.dr-registry.volume.size';

export async function artifactSummary(registry: Registry, repo: string, digest: string): Promise<ArtifactSummary> {
  try {
    const { bytes } = await registry.manifests.get(repo, { kind: 'digest', digest });
    const doc = JSON.parse(bytes.toString('utf8')) as { artifactType?: unknown; annotations?: Record<string, unknown> };
    const out: ArtifactSummary = {};
    if (typeof doc.artifactType === 'string') out.artifactType = doc.artifactType;
    const size = Number(doc.annotations?.[LOGICAL_SIZE_ANNOTATION]);
    if (doc.annotations?.[LOGICAL_SIZE_ANNOTATION] !== undefined && Number.isSafeInteger(size) && size >= 0) out.logicalSize = size;
    return out;
  } catch {
    return {}; // a point whose manifest is gone (pruned, collected) has nothing to show
  }
}
