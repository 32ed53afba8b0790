// One log line per request (method, path, status, bytes, ms, request id, who: the user the auth
// gate, token endpoint or admin guard admitted, else the one a client certificate names, and the
// client's address), and the request id echoed back so users can quote it.
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../../logger.js';
import { clientCertificateName } from '../auth/client-cert.js';
import { noteConnection, requestBytes } from './request-bytes.js';

const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function requestLog(logger: Logger) {
  const log = logger.child({ module: 'http' });
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('X-Request-Id');
    const requestId = SAFE_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = log.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    noteConnection(ctx);
    // At close ctx.req.socket can be null (request-bytes.ts): read the connection at the start.
    const client = ctx.req.socket?.remoteAddress;
    const certified = clientCertificateName(ctx);
    const done = () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const bytes = requestBytes(ctx);
      const fields = {
        requestId,
        method: ctx.method,
        path: ctx.path,
        user: (ctx.state.user as string | undefined) ?? certified,
        client,
        status: ctx.res.headersSent ? ctx.res.statusCode : ctx.status,
        bytesIn: bytes.in, // headers included
        bytesOut: bytes.out,
        ms: Math.round(ms * 10) / 10,
        error: ctx.state.error,
        aborted: !ctx.res.writableFinished || undefined,
      };
      log.info(fields, 'request');
    };
    ctx.res.once('close', done);
    await next();
  };
}
