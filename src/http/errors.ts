// The one place that turns errors into HTTP: status by OCI code, and the {"errors":[...]} body.
import type { Context, Next } from 'koa';
import { InvalidDigestError } from '../registry/digest.js';
import { RegistryError, type ErrorCode } from '../registry/errors.js';
import { IntegrityError, StorageUnavailableError } from '../storage/errors.js';
import { clientWentAway, noteClientGone } from './client-gone.js';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 503,
};

/** An error that only exists at the HTTP level (unknown route, body over a limit). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

interface ErrorBody {
  status: number;
  code: string;
  message: string;
  detail?: unknown;
}

export function describeError(err: unknown, requestId: string): ErrorBody & { unexpected: boolean } {
  if (err instanceof RegistryError) {
    return { status: STATUS_BY_CODE[err.code], code: err.code, message: err.message, detail: err.detail, unexpected: false };
  }
  if (err instanceof HttpError) {
    return { status: err.status, code: err.code, message: err.message, detail: err.detail, unexpected: false };
  }
  if (err instanceof InvalidDigestError) {
    return { status: 400, code: 'DIGEST_INVALID', message: 'invalid digest', detail: { reason: err.message }, unexpected: false };
  }
  if (err instanceof StorageUnavailableError) {
    return {
      status: 503,
      code: 'UNAVAILABLE',
      message: 'storage backend unavailable, retry later',
      detail: { requestId },
      unexpected: true,
    };
  }
  if (err instanceof IntegrityError) {
    return { status: 500, code: 'UNKNOWN', message: 'stored data failed its integrity check', detail: { requestId }, unexpected: true };
  }
  return { status: 500, code: 'UNKNOWN', message: 'internal server error', detail: { requestId }, unexpected: true };
}

export function writeError(ctx: Context, body: ErrorBody): void {
  if (ctx.method === 'HEAD') {
    ctx.body = null; // Koa turns a null body into 204: set the status after it
    ctx.remove('Content-Type');
    ctx.status = body.status;
    ctx.length = 0;
  } else {
    ctx.status = body.status;
  }
  if (body.status === 503) ctx.set('Retry-After', '5');
  if (body.status === 429 && !ctx.response.get('Retry-After')) ctx.set('Retry-After', '1');
  if (ctx.method === 'HEAD') return;
  const entry: Record<string, unknown> = { code: body.code, message: body.message };
  if (body.detail !== undefined) entry.detail = body.detail;
  ctx.body = { errors: [entry] };
}

/** Catches every error below it and writes the OCI error body; unexpected ones are logged. */
export function errorMiddleware() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      if (clientWentAway(ctx, err)) {
        // Not a server error: the request line says aborted; nobody is left to answer.
        if (ctx.state.log) noteClientGone(ctx, ctx.state.log, err);
        if (!ctx.res.destroyed) ctx.res.destroy();
        return;
      }
      const described = describeError(err, ctx.state.requestId as string);
      if (described.unexpected) ctx.state.log?.error({ err }, 'request failed');
      ctx.state.error = described.code;
      if (ctx.headerSent) {
        ctx.res.destroy();
        return;
      }
      writeError(ctx, described);
    }
  };
}
