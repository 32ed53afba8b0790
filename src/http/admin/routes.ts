// The admin API under /admin/v1, exactly as openapi.yaml describes it: one handler per
// operationId. Off (404) unless admin.token is set; every request must carry that token.
import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { isDigest } from '../../registry/digest.js';
import { RegistryError } from '../../registry/errors.js';
import { isValidName, isValidTag } from '../../registry/names.js';
import type { Registry } from '../../registry/registry.js';
import { storageUsage } from '../../registry/usage.js';
import { readAll } from '../../storage/streams.js';
import { HttpError } from '../errors.js';

export function adminRoutes(registry: Registry, token: string) {
  const router = new Router({ prefix: '/admin/v1' });
  router.use(requireToken(token));

  router.get('listRepositories', '/repositories', async (ctx) => {
    const usage = await storageUsage(registry);
    ctx.body = { repositories: usage.repositories };
  });

  router.get('getStorage', '/storage', async (ctx) => {
    const { logicalBytes, uniqueBytes, storedBytes } = await storageUsage(registry);
    ctx.body = { logicalBytes, uniqueBytes, storedBytes, dedupRatio: uniqueBytes > 0 ? logicalBytes / uniqueBytes : 1 };
  });

  router.get('listRecoveryPoints', '/recovery-points', async (ctx) => {
    const repository = repositoryParam(ctx.query.repository);
    const points = await registry.recoveryPoints.list(repository);
    ctx.body = {
      repository,
      points: points.map((p) => ({
        tag: p.tag,
        digest: p.digest,
        pushedAt: p.pushedAt.toISOString(),
        ...(p.lastPulledAt ? { lastPulledAt: p.lastPulledAt.toISOString() } : {}),
        pinned: p.pinned,
        current: p.current,
      })),
    };
  });

  router.post('pinRecoveryPoint', '/recovery-points/pin', async (ctx) => {
    const { repository, digest } = pointBody(await jsonBody(ctx));
    await registry.recoveryPoints.pin(repository, digest);
    ctx.status = 204;
  });

  router.post('unpinRecoveryPoint', '/recovery-points/unpin', async (ctx) => {
    const { repository, digest } = pointBody(await jsonBody(ctx));
    await registry.recoveryPoints.unpin(repository, digest);
    ctx.status = 204;
  });

  router.post('restoreRecoveryPoint', '/recovery-points/restore', async (ctx) => {
    const body = await jsonBody(ctx);
    const { repository, digest } = pointBody(body);
    const tag = body.tag;
    if (typeof tag !== 'string' || !isValidTag(tag)) throw badRequest('tag must be a valid tag');
    await registry.recoveryPoints.restore(repository, tag, digest);
    ctx.body = { repository, tag, digest };
  });

  return router;
}

function requireToken(token: string) {
  const expected = createHash('sha256').update(token).digest();
  return async (ctx: Context, next: Next) => {
    const given = /^Bearer (.+)$/.exec(ctx.get('Authorization'))?.[1] ?? '';
    // Compare digests in constant time: no early exit that would leak the token byte by byte.
    if (!timingSafeEqual(createHash('sha256').update(given).digest(), expected)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="dr-registry admin"');
      throw new RegistryError('UNAUTHORIZED', 'admin token required');
    }
    await next();
  };
}

const badRequest = (message: string) => new HttpError(400, 'BAD_REQUEST', message);

function repositoryParam(value: unknown): string {
  if (typeof value !== 'string' || !isValidName(value)) throw badRequest('repository must be a valid repository name');
  return value;
}

function pointBody(body: Record<string, unknown>): { repository: string; digest: string } {
  const repository = repositoryParam(body.repository);
  if (typeof body.digest !== 'string' || !isDigest(body.digest)) throw badRequest('digest must be a valid digest');
  return { repository, digest: body.digest };
}

async function jsonBody(ctx: Context): Promise<Record<string, unknown>> {
  try {
    const value = JSON.parse((await readAll(ctx.req, 64 * 1024)).toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through: the same answer for malformed JSON and a non-object
  }
  throw badRequest('body must be a JSON object');
}
