// Admin API operations the console needs beyond routes.ts (openapi.yaml has them too):
//   GET /keys                       encryption: on or off, key ids, the active one, what each wraps
//   GET /recovery-points/details    per point: size, bytes only it holds, config, layers, children,
//                                   referrers (signatures, SBOMs, volume snapshots), annotations
//   GET /storage/history            storage and recovery points over time, as the points arrived
// None of them changes anything; none returns key material.
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { isValidName } from '../../registry/names.js';
import { parseManifest, type Descriptor } from '../../registry/manifest-format.js';
import { RegistryError } from '../../registry/errors.js';
import type { Registry } from '../../registry/registry.js';
import type { Maintenance } from '../../retention/maintenance.js';
import { STORE_PARALLELISM, forEachLimit } from '../../retention/concurrency.js';
import { pointUsage } from '../../retention/point-usage.js';
import { canReportKeys } from '../../storage/driver.js';
import { HttpError } from '../errors.js';

/** Admin answers are live data: never kept by a browser or a proxy. */
export async function noStore(ctx: Context, next: Next): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  await next();
}

export function detailRoutes(router: Router, registry: Registry, maintenance: Maintenance): void {
  router.get('getKeyStatus', '/keys', async (ctx) => {
    const store = registry.store;
    if (!canReportKeys(store)) {
      ctx.body = { encrypted: false, keys: [], missingKeys: [] };
      return;
    }
    const status = await store.keyStatus();
    ctx.body = {
      encrypted: true,
      ...status,
      // Data keys still wrapped by an older key: `keys rotate` has not finished (or not run).
      rotationPending: status.keys.some((k) => !k.active && k.dataKeys > 0),
    };
  });

  router.get('getRecoveryPointDetails', '/recovery-points/details', async (ctx) => {
    const repository = ctx.query.repository;
    if (typeof repository !== 'string' || !isValidName(repository)) {
      throw new HttpError(400, 'BAD_REQUEST', 'repository must be a valid repository name');
    }
    const usage = await pointUsage(registry, { deleteUntagged: maintenance.gcOptions().deleteUntagged, maxSamples: 1 });
    const bytes = usage.points.get(repository) ?? new Map();
    const digests = [...bytes.keys()];
    const points: unknown[] = new Array(digests.length);
    await forEachLimit(digests, STORE_PARALLELISM, async (digest, i) => {
      points[i] = { digest, ...bytes.get(digest), ...(await describe(registry, repository, digest)) };
    });
    ctx.body = { repository, points };
  });

  router.get('getStorageHistory', '/storage/history', async (ctx) => {
    const usage = await pointUsage(registry, { deleteUntagged: maintenance.gcOptions().deleteUntagged });
    ctx.body = { samples: usage.history };
  });
}

/** What a point's manifest says: its kind, config, layers, children, referrers, annotations. */
async function describe(registry: Registry, repo: string, digest: string): Promise<Record<string, unknown>> {
  let manifest;
  try {
    manifest = await registry.manifests.get(repo, { kind: 'digest', digest });
  } catch (err) {
    // A pruned point the collector removed meanwhile, or a manifest deleted through the API.
    if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') return { missing: true, layers: [], manifests: [], referrers: [] };
    throw err;
  }
  const parsed = parseManifest(manifest.bytes, manifest.mediaType);
  const image = parsed.manifests.length === 0 && parsed.blobs.length > 0;
  const referrers = await registry.referrers.list(repo, digest);
  return {
    mediaType: manifest.mediaType,
    manifestBytes: manifest.size,
    ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
    ...(image ? { config: brief(parsed.blobs[0]!) } : {}),
    layers: (image ? parsed.blobs.slice(1) : []).map(brief),
    manifests: parsed.manifests.map(brief),
    referrers: referrers.map(brief),
    ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
  };
}

function brief(d: Descriptor) {
  return {
    digest: d.digest,
    mediaType: d.mediaType,
    size: d.size,
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
    ...(d.platform ? { platform: d.platform } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  };
}
