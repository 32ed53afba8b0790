// Counts and times every request (drreg_http_* metrics) when its response ends, however it ends.
import type { Context, Next } from 'koa';
import { routeKind, type Metrics } from '../../metrics.js';
import { noteConnection, requestBytes } from './request-bytes.js';

export function httpMetrics(metrics: Metrics) {
  return async (ctx: Context, next: Next) => {
    const route = routeKind(ctx.path);
    const end = metrics.httpDuration.startTimer({ method: ctx.method, route });
    noteConnection(ctx);
    ctx.res.once('close', () => {
      end();
      // A client that went away before the response ended has no status of its own (Koa's
      // default would say 404).
      const status = ctx.res.writableFinished ? String(ctx.res.statusCode) : 'aborted';
      metrics.httpRequests.inc({ method: ctx.method, route, status });
      const bytes = requestBytes(ctx);
      metrics.httpReceivedBytes.inc({ route }, bytes.in);
      metrics.httpSentBytes.inc({ route }, bytes.out);
    });
    await next();
  };
}
