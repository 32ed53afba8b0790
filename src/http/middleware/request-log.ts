// One log line per request (method, path, status, bytes, ms, request id), and the request id
// echoed back so users can quote it.
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../../logger.js';
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
    const done = () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const bytes = requestBytes(ctx);
      const fields = {
        requestId,
        method: ctx.method,
        path: ctx.path,
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
