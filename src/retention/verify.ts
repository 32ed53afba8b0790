// Scrub: reads every blob of the recovery points asked for (all, one repository, or one point;
// pruned points still restorable included),
// checks each against its digest and size (on an encrypted store every segment is authenticated
// as it is read), and reports what is damaged and which recovery points that breaks. Proof that a
// point will restore before the day it must. Each blob is read once per run, however many points
// share it.
import type { Logger } from '../logger.js';
import { newHash, parseDigest } from '../registry/digest.js';
import { RegistryError, manifestUnknown, nameUnknown } from '../registry/errors.js';
import { isForeign, parseManifest } from '../registry/manifest-format.js';
import type { ManifestLink } from '../registry/manifests.js';
import { readJson } from '../registry/objects.js';
import * as paths from '../registry/paths.js';
import type { Registry } from '../registry/registry.js';
import { IntegrityError, StorageUnavailableError, isNotFound } from '../storage/errors.js';
import { forEachLimit } from './concurrency.js';

export interface VerifyScope {
  /** Only this repository (all when absent). */
  repository?: string;
  /** Only the recovery points of this manifest digest (needs `repository`). */
  digest?: string;
}

export type Damage = 'missing' | 'digest-mismatch' | 'size-mismatch' | 'unreadable' | 'invalid-manifest';

export interface DamagedBlob {
  digest: string;
  problem: Damage;
  detail: string;
}

export interface BrokenPoint {
  repository: string;
  tag: string;
  digest: string;
  pushedAt: string;
  /** The damaged blobs (the manifest itself, its config, layers, child manifests) it needs. */
  damaged: string[];
  /** A pruned point, still restorable (retention.grace). */
  pruned?: true;
}

export interface VerifyReport {
  scope: VerifyScope;
  startedAt: string;
  finishedAt: string;
  repositories: number;
  points: number;
  blobsChecked: number;
  bytesRead: number;
  damaged: DamagedBlob[];
  brokenPoints: BrokenPoint[];
}

export interface VerifyProgress {
  done: number;
  total: number;
}

/** Blob reads in flight at once: each is a stream through a hash, mostly I/O-bound. */
const READ_PARALLELISM = 4;

/** Resolves the scope against the store: throws NAME_UNKNOWN or MANIFEST_UNKNOWN when it names nothing. */
export async function checkScope(registry: Registry, scope: VerifyScope): Promise<void> {
  if (scope.digest && !scope.repository) throw new RegistryError('NAME_INVALID', 'a recovery point is named by repository and digest');
  if (scope.repository && !(await registry.repositories.exists(scope.repository))) throw nameUnknown(scope.repository);
  if (scope.repository && scope.digest) {
    const points = [...(await registry.recoveryPoints.list(scope.repository)), ...(await registry.recoveryPoints.listPruned(scope.repository))];
    if (!points.some((p) => p.digest === scope.digest)) throw manifestUnknown(scope.digest);
  }
}

export async function verify(
  registry: Registry,
  scope: VerifyScope,
  options: { logger?: Logger; onProgress?: (p: VerifyProgress) => void } = {},
): Promise<VerifyReport> {
  const startedAt = new Date().toISOString();
  await checkScope(registry, scope);
  const repositories = scope.repository ? [scope.repository] : await registry.repositories.list();
  const points: Array<{ repo: string; tag: string; digest: string; pushedAt: Date; pruned?: true }> = [];
  for (const repository of repositories) {
    const listed = [
      ...(await registry.recoveryPoints.list(repository)),
      ...(await registry.recoveryPoints.listPruned(repository)).map((p) => ({ ...p, repo: repository, pruned: true as const })),
    ];
    points.push(...listed.filter((p) => !scope.digest || p.digest === scope.digest));
  }

  const blobChecks = new Map<string, Promise<{ damage?: DamagedBlob; bytes?: Buffer }>>();
  const manifestChecks = new Map<string, Promise<string[]>>();
  const damaged = new Map<string, DamagedBlob>();
  let bytesRead = 0;
  let reading = 0;
  const waiting: Array<() => void> = [];
  const slot = async () => {
    if (reading >= READ_PARALLELISM) await new Promise<void>((r) => waiting.push(r));
    reading++;
  };
  const release = () => {
    reading--;
    waiting.shift()?.();
  };

  /** Reads one blob through its digest; keeps the bytes of a manifest. */
  const checkBlob = (digest: string, keep: boolean) => {
    let check = blobChecks.get(digest);
    if (!check) {
      check = (async () => {
        await slot();
        try {
          const result = await readBlob(registry, digest, keep);
          bytesRead += result.read;
          if (result.damage) damaged.set(digest, result.damage);
          return result;
        } finally {
          release();
        }
      })();
      blobChecks.set(digest, check);
    }
    return check;
  };

  /** The damaged digests a manifest needs: itself, its blobs, its child manifests (recursively). */
  const checkManifest = (repository: string, digest: string): Promise<string[]> => {
    const id = `${repository}@${digest}`;
    let check = manifestChecks.get(id);
    if (!check) {
      check = (async () => {
        const { damage, bytes } = await checkBlob(digest, true);
        if (damage || !bytes) return [digest];
        let parsed;
        try {
          parsed = parseManifest(bytes, undefined);
        } catch {
          const link = await readJson<ManifestLink>(registry.store, paths.manifestLinkKey(repository, digest));
          try {
            parsed = parseManifest(bytes, link?.mediaType);
          } catch (err) {
            const invalid: DamagedBlob = { digest, problem: 'invalid-manifest', detail: (err as Error).message };
            damaged.set(digest, invalid);
            return [digest];
          }
        }
        const found = new Set<string>();
        const blobs = parsed.blobs.filter((d) => !isForeign(d));
        const results = await Promise.all([
          ...blobs.map(async (d) => ((await checkBlob(d.digest, false)).damage ? [d.digest] : [])),
          ...parsed.manifests.map((d) => checkManifest(repository, d.digest)),
        ]);
        for (const list of results) for (const d of list) found.add(d);
        return [...found];
      })();
      manifestChecks.set(id, check);
    }
    return check;
  };

  const brokenPoints: BrokenPoint[] = [];
  let done = 0;
  await forEachLimit(points, READ_PARALLELISM, async (point) => {
    const bad = await checkManifest(point.repo, point.digest);
    if (bad.length > 0) {
      brokenPoints.push({
        repository: point.repo,
        tag: point.tag,
        digest: point.digest,
        pushedAt: point.pushedAt.toISOString(),
        damaged: bad.sort(),
        ...(point.pruned ? { pruned: true as const } : {}),
      });
    }
    options.onProgress?.({ done: ++done, total: points.length });
  });
  brokenPoints.sort((a, b) => a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag) || a.pushedAt.localeCompare(b.pushedAt));
  const report: VerifyReport = {
    scope,
    startedAt,
    finishedAt: new Date().toISOString(),
    repositories: repositories.length,
    points: points.length,
    blobsChecked: blobChecks.size,
    bytesRead,
    damaged: [...damaged.values()].sort((a, b) => a.digest.localeCompare(b.digest)),
    brokenPoints,
  };
  const log = options.logger?.child({ module: 'verify' });
  if (report.damaged.length > 0) log?.error({ damaged: report.damaged.length, brokenPoints: brokenPoints.length }, 'verify found damage');
  else log?.info({ points: report.points, blobs: report.blobsChecked, bytes: bytesRead }, 'verify found no damage');
  return report;
}

/** Reads a blob from the store (never a cache) and checks its size and digest. */
async function readBlob(registry: Registry, digest: string, keep: boolean): Promise<{ damage?: DamagedBlob; bytes?: Buffer; read: number }> {
  const damage = (problem: Damage, detail: string) => ({ damage: { digest, problem, detail }, read });
  let read = 0;
  const index = await registry.blobs.read(digest);
  if (!index) return damage('missing', 'no blob index in the store');
  const hash = newHash(parseDigest(digest).algorithm);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of await registry.blobs.open(index, undefined)) {
      const buf = chunk as Buffer;
      hash.update(buf);
      read += buf.length;
      if (keep) chunks.push(buf);
    }
  } catch (err) {
    if (isNotFound(err) || (err instanceof RegistryError && err.code === 'BLOB_UNKNOWN')) return damage('missing', 'a data part of the blob is gone');
    if (err instanceof StorageUnavailableError) throw err; // an outage is not damage: the run fails
    if (err instanceof IntegrityError) return damage('unreadable', err.message);
    return damage('unreadable', (err as Error).message);
  }
  if (read !== index.size) return damage('size-mismatch', `read ${read} bytes, the index says ${index.size}`);
  const computed = `${parseDigest(digest).algorithm}:${hash.digest('hex')}`;
  if (computed !== digest) return damage('digest-mismatch', `the bytes hash to ${computed}`);
  return { bytes: keep ? Buffer.concat(chunks) : undefined, read };
}
