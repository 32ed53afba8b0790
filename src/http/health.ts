// GET /healthz for load balancers and orchestrators: 200 while this replica can use its store,
// 503 when it cannot, so traffic moves to replicas that can. The probe is the store's own
// start-up check (a small write and delete), so a read-only or full store counts as down too.
// No authentication (probes carry no tokens), nothing revealed but the state, and at most one
// probe per second reaches the store.
import type { Context, Next } from 'koa';
import type { ObjectStore } from '../storage/driver.js';

const PROBE_TIMEOUT_MS = 5000;
const CACHE_MS = 1000;

export function healthEndpoint(store: ObjectStore) {
  let last: { at: number; ok: Promise<boolean> } | undefined;
  const probe = async (): Promise<boolean> => {
    try {
      await store.check({ signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      return true;
    } catch {
      return false;
    }
  };
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== '/healthz') return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      ctx.status = 405;
      return;
    }
    if (!last || Date.now() - last.at > CACHE_MS) last = { at: Date.now(), ok: probe() };
    const ok = await last.ok;
    ctx.set('Cache-Control', 'no-store');
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ok' : 'unavailable' };
  };
}
