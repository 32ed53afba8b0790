// The admin API under /admin/v1, exactly as openapi.yaml describes it: one handler per
// operationId. This router is only ever called by adminApi (mount.ts), after the guard (admin.token
// or an admin user, see http/auth/admin-guard.ts): never mount it, or another admin router, with
// app.use. Strict and case-sensitive: one spelling per operation.
import Router from '@koa/router';
import type { Context } from 'koa';
import { isDigest } from '../../registry/digest.js';
import { RegistryError, nameUnknown } from '../../registry/errors.js';
import { isValidName, isValidTag } from '../../registry/names.js';
import type { Registry } from '../../registry/registry.js';
import { LeaseBusyError } from '../../retention/lease.js';
import { GcAlreadyRunningError, type Maintenance } from '../../retention/maintenance.js';
import { PolicyError, toText } from '../../retention/policies.js';
import type { PruneResult } from '../../retention/prune.js';
import { storageUsage } from '../../registry/usage.js';
import { artifactSummary } from '../../registry/artifact-summary.js';
import { readAll } from '../../storage/streams.js';
import { HttpError } from '../errors.js';
import { detailRoutes, noStore } from './details.js';
import { immutabilityRoutes } from './immutability-routes.js';
import { systemsRoutes } from './systems.js';
import { verifyRoutes } from './verify.js';

export function adminRoutes(registry: Registry, maintenance: Maintenance) {
  const router = new Router({ prefix: '/admin/v1', sensitive: true, strict: true });
  router.use(noStore);
  immutabilityRoutes(router, registry, maintenance);
  detailRoutes(router, registry, maintenance);

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
    if (points.length === 0 && !(await registry.repositories.exists(repository))) throw nameUnknown(repository);
    const graceMs = maintenance.gcOptions().retentionGraceMs;
    ctx.body = {
      repository,
      points: await Promise.all(points.map(async (p) => ({
        tag: p.tag,
        digest: p.digest,
        pushedAt: p.pushedAt.toISOString(),
        ...(p.lastPulledAt ? { lastPulledAt: p.lastPulledAt.toISOString() } : {}),
        pinned: p.pinned,
        current: p.current,
        ...(p.lockedUntil ? { lockedUntil: p.lockedUntil.toISOString() } : {}),
        ...(await artifactSummary(registry, repository, p.digest)),
      }))),
      pruned: (await registry.recoveryPoints.listPruned(repository)).map((p) => ({
        tag: p.tag,
        digest: p.digest,
        pushedAt: p.pushedAt.toISOString(),
        prunedAt: p.prunedAt.toISOString(),
        restorableUntil: new Date(p.prunedAt.getTime() + graceMs).toISOString(),
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

  router.get('getRetentionPolicies', '/retention/policies', async (ctx) => {
    const { source, policies } = await maintenance.policies.current();
    ctx.body = { source, policies: policies.map(toText) };
  });

  router.put('putRetentionPolicies', '/retention/policies', async (ctx) => {
    const body = await jsonBody(ctx);
    try {
      const policies = await maintenance.policies.replace(body.policies);
      ctx.body = { source: 'api', policies: policies.map(toText) };
    } catch (err) {
      if (err instanceof PolicyError) throw badRequest(err.message);
      throw err;
    }
  });

  router.delete('resetRetentionPolicies', '/retention/policies', async (ctx) => {
    await maintenance.policies.reset();
    ctx.status = 204;
  });

  router.post('prune', '/prune', async (ctx) => {
    const body = await jsonBody(ctx);
    if (typeof body.dryRun !== 'boolean') throw badRequest('dryRun must be true or false');
    ctx.body = pruneBody(await maintenance.prune({ dryRun: body.dryRun }));
  });

  router.post('startGc', '/gc', async (ctx) => {
    const body = ctx.get('Content-Length') === '0' || (!ctx.get('Content-Length') && !ctx.get('Transfer-Encoding')) ? {} : await jsonBody(ctx);
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw badRequest('dryRun must be true or false');
    try {
      ctx.body = await maintenance.startGc({ dryRun: body.dryRun === true });
      ctx.status = 202;
    } catch (err) {
      if (err instanceof GcAlreadyRunningError || err instanceof LeaseBusyError) throw new HttpError(409, 'CONFLICT', err.message);
      throw err;
    }
  });

  router.get('getGcStatus', '/gc', async (ctx) => {
    ctx.body = await maintenance.gcStatus();
  });

  systemsRoutes(router, maintenance);
  verifyRoutes(router, maintenance);
  return router;
}

function pruneBody(result: PruneResult) {
  return {
    dryRun: result.dryRun,
    keptPoints: result.keptPoints,
    droppedPoints: result.droppedPoints,
    freedBytes: result.freedBytes,
    repositories: result.repositories.map((r) => ({
      name: r.name,
      ...(r.policy ? { policy: r.policy } : {}),
      points: r.decisions.map((d) => ({
        tag: d.point.tag,
        digest: d.point.digest,
        pushedAt: d.point.pushedAt.toISOString(),
        keep: d.keep,
        reasons: d.reasons,
      })),
    })),
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
