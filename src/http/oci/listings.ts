// Listings: /v2/<name>/tags/list, /v2/_catalog and /v2/<name>/referrers/<digest>.
import type { Context } from 'koa';
import { parseDigest } from '../../registry/digest.js';
import { RegistryError, nameUnknown } from '../../registry/errors.js';
import { OCI_INDEX } from '../../registry/media-types.js';
import { paginate } from '../../registry/repositories.js';
import type { Registry } from '../../registry/registry.js';
import type { RequestAccess } from '../auth/gate.js';
import type { Route } from './context.js';

/** Catalog pages are capped, as in Distribution, so one request cannot list everything. */
const CATALOG_MAX_ENTRIES = 1000;

export async function listTags({ ctx, repo, registry, signal }: Route): Promise<void> {
  const { n, last } = pageParams(ctx);
  const names = await registry.tags.names(repo, { signal });
  if (names.length === 0 && !(await registry.repositories.exists(repo))) throw nameUnknown(repo);
  const { page, next } = paginate(names, n, last);
  if (next !== undefined) setNextLink(ctx, `/v2/${repo}/tags/list`, n!, next);
  ctx.body = { name: repo, tags: page };
}

/** Lists only the repositories the client may pull from. */
export async function listCatalog(ctx: Context, registry: Registry, access: RequestAccess): Promise<void> {
  const { n, last } = pageParams(ctx);
  const pageSize = Math.min(n ?? CATALOG_MAX_ENTRIES, CATALOG_MAX_ENTRIES);
  const visible = (await registry.repositories.list()).filter((name) => access.mayRead(name));
  const { page, next } = paginate(visible, pageSize, last);
  if (next !== undefined) setNextLink(ctx, '/v2/_catalog', pageSize, next);
  ctx.body = { repositories: page };
}

export async function listReferrers({ ctx, repo, ref, registry, signal }: Route): Promise<void> {
  parseDigest(ref);
  const artifactType = typeof ctx.query.artifactType === 'string' && ctx.query.artifactType ? ctx.query.artifactType : undefined;
  const manifests = await registry.referrers.list(repo, ref, artifactType, { signal });
  if (artifactType !== undefined) ctx.set('OCI-Filters-Applied', 'artifactType');
  ctx.type = OCI_INDEX;
  ctx.body = { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
}

function pageParams(ctx: Context): { n?: number; last?: string } {
  const rawN = ctx.query.n;
  const rawLast = ctx.query.last;
  let n: number | undefined;
  if (rawN !== undefined) {
    n = Number(rawN);
    if (typeof rawN !== 'string' || !/^\d+$/.test(rawN) || !Number.isSafeInteger(n)) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n: String(rawN).slice(0, 20) });
    }
  }
  const last = typeof rawLast === 'string' && rawLast !== '' ? rawLast : undefined;
  return { n, last };
}

function setNextLink(ctx: Context, path: string, n: number, last: string): void {
  const query = new URLSearchParams({ n: String(n), last });
  ctx.set('Link', `<${path}?${query.toString()}>; rel="next"`);
}
