// A client that closes its connection mid-request (a cancelled push, a killed docker pull, a
// slowloris) makes the request's streams fail: the body read resets, the store write is aborted
// through the request's AbortSignal, the response pipe closes early. None of that is a server
// error. The request log line records it (aborted: true); everything else logs it at debug level,
// once, without a stack.
import type { Context } from 'koa';
import type { Logger } from '../logger.js';

const CONNECTION_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/** True when `err` is what a vanished client leaves behind and the client has indeed gone. */
export function clientWentAway(ctx: Pick<Context, 'req' | 'res'>, err: unknown): boolean {
  // Not ctx.req.destroyed: a request whose body was read in full is destroyed too (autoDestroy),
  // with its client still waiting for the answer; a store failing then (ECONNRESET from S3, say)
  // is a server error the client must be told of. A body cut short is readableAborted.
  const connectionGone = ctx.req.readableAborted || ctx.res.destroyed || ctx.req.socket?.destroyed !== false;
  if (!connectionGone || ctx.res.writableFinished) return false;
  return isConnectionError(err);
}

function isConnectionError(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 3) return false;
  const { code, name, message, cause } = err as { code?: string; name?: string; message?: string; cause?: unknown };
  if (name === 'AbortError' || (code && CONNECTION_CODES.has(code))) return true;
  if (message === 'aborted' || message === 'Premature close' || message === 'client closed the connection') return true;
  return isConnectionError(cause, depth + 1);
}

/** Logs, once per request, at debug level and without a stack, that its client went away. */
export function noteClientGone(ctx: Pick<Context, 'state'>, fallback: Logger, err: unknown): void {
  if (ctx.state.clientGoneLogged) return;
  ctx.state.clientGoneLogged = true;
  const e = err as { code?: string; name?: string; message?: string } | undefined;
  ((ctx.state.log as Logger | undefined) ?? fallback).debug({ reason: String(e?.code ?? e?.name ?? e?.message ?? 'closed').slice(0, 100) }, 'client went away');
}
