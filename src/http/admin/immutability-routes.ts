// Admin API for immutability and the audit trail (openapi.yaml: getLock, putLock, listAudit,
// verifyAudit), added to the admin router (routes.ts), which only http/admin/mount.ts calls,
// behind the guard.
import type Router from '@koa/router';
import { listAudit, verifyAudit, type AuditFilter } from '../../audit/log.js';
import { formatDuration, parseDuration } from '../../config/units.js';
import { MAX_LOCK_MS, type LockState } from '../../registry/protection.js';
import type { Registry } from '../../registry/registry.js';
import type { Maintenance } from '../../retention/maintenance.js';
import { readAll } from '../../storage/streams.js';
import { HttpError } from '../errors.js';

export function immutabilityRoutes(router: Router, registry: Registry, maintenance: Maintenance): void {
  router.get('getLock', '/lock', async (ctx) => {
    ctx.body = lockBody(await registry.protection.lockState());
  });

  router.put('putLock', '/lock', async (ctx) => {
    let body: unknown;
    try {
      body = JSON.parse((await readAll(ctx.req, 64 * 1024)).toString('utf8'));
    } catch {
      throw badRequest('body must be a JSON object');
    }
    const text = (body as { lock?: unknown } | null)?.lock;
    const ms = typeof text === 'string' ? parseDuration(text) : text === 0 ? 0 : undefined;
    if (ms === undefined) throw badRequest('lock must be a duration like "14d" or "0"');
    if (ms > MAX_LOCK_MS) throw badRequest('lock must be at most 36500d (100 years)');
    ctx.body = lockBody(await registry.protection.setLock(ms, 'api'));
  });

  router.get('listAudit', '/audit', async (ctx) => {
    const q = ctx.query;
    const one = (name: string): string | undefined => {
      const v = q[name];
      if (Array.isArray(v)) throw badRequest(`${name} may be given once`);
      return v;
    };
    const filter: AuditFilter = {};
    for (const name of ['since', 'until'] as const) {
      const v = one(name);
      if (v === undefined) continue;
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) throw badRequest(`${name} must be an RFC 3339 time`);
      filter[name] = d;
    }
    for (const name of ['action', 'actor', 'repository'] as const) {
      const v = one(name);
      if (v !== undefined) filter[name] = v.slice(0, 300);
    }
    const outcome = one('outcome');
    if (outcome !== undefined) {
      if (outcome !== 'ok' && outcome !== 'denied' && outcome !== 'failed') throw badRequest('outcome must be ok, denied or failed');
      filter.outcome = outcome;
    }
    const limit = one('limit');
    if (limit !== undefined) {
      const n = Number(limit);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) throw badRequest('limit must be an integer from 1 to 10000');
      filter.limit = n;
    }
    // What this process has queued is written first, so a client sees its own actions.
    await maintenance.audit?.flush();
    ctx.body = { records: await listAudit(registry.store, filter) };
  });

  router.get('verifyAudit', '/audit/verify', async (ctx) => {
    await maintenance.audit?.flush();
    ctx.body = await verifyAudit(registry.store, { retentionMs: maintenance.config.audit.retention });
  });
}

function lockBody(state: LockState) {
  const settledAt = state.settledAtMs();
  return {
    // The lock a point pushed now gets, and the newest value set (lower while a lowering waits).
    effective: formatDuration(state.effectiveMs()),
    configured: formatDuration(state.configuredMs()),
    ...(settledAt > state.nowMs ? { configuredFrom: new Date(settledAt).toISOString() } : {}),
    history: state.entries.map((e) => ({ lock: formatDuration(e.lockMs), setAt: new Date(e.setAtMs).toISOString(), source: e.source })),
  };
}

const badRequest = (message: string) => new HttpError(400, 'BAD_REQUEST', message);
