// Counts and times every request (drreg_http_* metrics) when its response ends, however it ends.
import type { Socket } from 'node:net';
import type { Context, Next } from 'koa';
import { routeKind, type Metrics } from '../../metrics.js';

export function httpMetrics(metrics: Metrics) {
  // Bytes of each connection already counted. A request is charged from there, not from its own
  // start: by then the socket has read the headers and the first chunk of the body. Totals stay
  // exact over a connection's requests, however they interleave.
  const counted = new WeakMap<Socket, { read: number; written: number }>();
  return async (ctx: Context, next: Next) => {
    const route = routeKind(ctx.path);
    const end = metrics.httpDuration.startTimer({ method: ctx.method, route });
    const socket = ctx.req.socket;
    ctx.res.once('close', () => {
      end();
      // A client that went away before the response ended has no status of its own (Koa's
      // default would say 404).
      const status = ctx.res.writableFinished ? String(ctx.res.statusCode) : 'aborted';
      metrics.httpRequests.inc({ method: ctx.method, route, status });
      const before = counted.get(socket) ?? { read: 0, written: 0 };
      const now = { read: socket.bytesRead, written: socket.bytesWritten };
      counted.set(socket, now);
      metrics.httpReceivedBytes.inc({ route }, now.read - before.read);
      metrics.httpSentBytes.inc({ route }, now.written - before.written);
    });
    await next();
  };
}
