// GET /healthz for load balancers and orchestrators: 200 while this replica can reach its store
// (Registry.storeReachable: one read of a probe object), 503 when it cannot or does not answer
// within 5 s, so traffic moves to replicas that can. No authentication (probes carry no tokens),
// nothing revealed but the state, and one probe at a time, at most one per second, reaches the
// store.
import type { Context, Next } from 'koa';
import { HttpError } from './errors.js';

const PROBE_TIMEOUT_MS = 5000;
const CACHE_MS = 1000;

export function healthEndpoint(probe: () => Promise<boolean>) {
  let running: Promise<boolean> | undefined;
  let last: { at: number; ok: boolean } | undefined;

  const state = (): Promise<boolean> => {
    if (last && Date.now() - last.at <= CACHE_MS) return Promise.resolve(last.ok);
    running ??= probe().then((ok) => {
      last = { at: Date.now(), ok };
      running = undefined;
      return ok;
    });
    // A store that hangs is down for the balancer; the probe goes on, and is reused, meanwhile.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS)));
    return Promise.race([running, timeout]).finally(() => clearTimeout(timer));
  };

  return async (ctx: Context, next: Next) => {
    if (ctx.path !== '/healthz') return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      throw new HttpError(405, 'UNSUPPORTED', 'the operation is unsupported', { method: ctx.method });
    }
    const ok = await state();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ok' : 'unavailable' };
  };
}
