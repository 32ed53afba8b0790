// What every OCI handler receives: the Koa context, the matched route parameters, and the domain.
import type { Context } from 'koa';
import type { Registry } from '../../registry/registry.js';
import type { Gate, RequestAccess } from '../auth/gate.js';

export interface OciOptions {
  maxManifestBytes: number;
  deletesEnabled: boolean;
  /** HEAD of a blob held by another repository links it here (docs/dedup.md). */
  linkExistingOnHead: boolean;
  /** GET of a whole blob answers 307 to a presigned store URL (storage.s3.redirect). */
  redirectBlobs: boolean;
  /** Who may do what (auth off: everyone everything). */
  gate: Gate;
}

export interface Route {
  ctx: Context;
  repo: string;
  /** The last path segment (digest, reference or upload id), URL-decoded. */
  ref: string;
  registry: Registry;
  options: OciOptions;
  /** What this request's client was granted. */
  access: RequestAccess;
  signal: AbortSignal;
}

/** Sets a status with an empty body (Koa would otherwise write the status text). */
export function emptyResponse(ctx: Context, status: number): void {
  ctx.status = status;
  ctx.body = '';
  ctx.remove('Content-Type');
  ctx.length = 0;
}

export function blobLocation(repo: string, digest: string): string {
  return `/v2/${repo}/blobs/${digest}`;
}

export function uploadLocation(repo: string, id: string): string {
  return `/v2/${repo}/blobs/uploads/${id}`;
}

/** The Range header value for an upload of `offset` bytes: inclusive, "0-0" when empty. */
export function uploadRange(offset: number): string {
  return `0-${Math.max(offset - 1, 0)}`;
}

/** Content-Length as a number, or undefined when absent (chunked bodies). */
export function contentLength(ctx: Context): number | undefined {
  const raw = ctx.get('Content-Length');
  if (raw === '') return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** True when the request carries a body (length > 0, or chunked). */
export function hasBody(ctx: Context): boolean {
  const length = contentLength(ctx);
  return length === undefined ? ctx.get('Transfer-Encoding') !== '' : length > 0;
}
