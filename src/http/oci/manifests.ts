// Manifests: /v2/<name>/manifests/<reference> (tag or digest), GET/HEAD/PUT/DELETE.
import type { Context } from 'koa';
import { RegistryError, manifestUnknown } from '../../registry/errors.js';
import type { StoredManifest } from '../../registry/manifests.js';
import { isManifestMediaType } from '../../registry/media-types.js';
import { parseReference, type Reference } from '../../registry/names.js';
import { readAll } from '../../registry/objects.js';
import { HttpError } from '../errors.js';
import { contentLength, emptyResponse, type Route } from './context.js';

export async function getManifest({ ctx, repo, ref, registry, signal }: Route): Promise<void> {
  const reference = readableReference(ref);
  const head = ctx.method === 'HEAD';
  const found: StoredManifest & { bytes?: Buffer } = head
    ? await registry.manifests.stat(repo, reference, { signal })
    : await registry.manifests.get(repo, reference, { signal });
  if (!accepts(ctx, found.mediaType)) {
    throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', {
      reason: `stored as ${found.mediaType}, which the Accept header does not allow`,
    });
  }
  ctx.status = 200;
  ctx.type = found.mediaType;
  ctx.set('Docker-Content-Digest', found.digest);
  ctx.set('ETag', `"${found.digest}"`);
  if (head) {
    ctx.length = found.size;
    return;
  }
  ctx.body = found.bytes;
  registry.recoveryPoints.recordPull(repo, found.digest).catch((err: unknown) => ctx.state.log?.warn({ err }, 'pull not recorded'));
}

export async function putManifest({ ctx, repo, ref, registry, options }: Route): Promise<void> {
  const reference = parseReference(ref);
  if (!reference) {
    ctx.req.resume();
    throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', { reason: 'reference is neither a valid tag nor a digest' });
  }
  const declared = contentLength(ctx);
  if (declared !== undefined && declared > options.maxManifestBytes) {
    ctx.set('Connection', 'close');
    throw tooLarge(options.maxManifestBytes);
  }
  let bytes: Buffer;
  try {
    bytes = await readAll(ctx.req, options.maxManifestBytes);
  } catch (err) {
    if (err instanceof RangeError) {
      ctx.set('Connection', 'close');
      throw tooLarge(options.maxManifestBytes);
    }
    throw err;
  }
  const stored = await registry.manifests.put(repo, reference, bytes, ctx.get('Content-Type') || undefined);
  ctx.set('Location', `/v2/${repo}/manifests/${stored.digest}`);
  ctx.set('Docker-Content-Digest', stored.digest);
  if (stored.subject) ctx.set('OCI-Subject', stored.subject);
  emptyResponse(ctx, 201);
}

export async function deleteManifest({ ctx, repo, ref, registry, options }: Route): Promise<void> {
  if (!options.deletesEnabled) throw new RegistryError('UNSUPPORTED', 'deletes are disabled on this registry');
  await registry.manifests.delete(repo, readableReference(ref));
  emptyResponse(ctx, 202);
}

/** A reference that is neither a tag nor a digest cannot name a stored manifest. */
function readableReference(ref: string): Reference {
  const reference = parseReference(ref);
  if (!reference) throw manifestUnknown(ref);
  return reference;
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'SIZE_INVALID', 'manifest exceeds the size limit', { limit });
}

/**
 * Accept negotiation: serve the stored manifest unless the client listed manifest types and
 * none of them (nor a wildcard) matches it. Clients that send no Accept get what is stored.
 */
function accepts(ctx: Context, mediaType: string): boolean {
  const accepted = ctx
    .get('Accept')
    .split(',')
    .map((part) => part.split(';')[0]!.trim().toLowerCase())
    .filter(Boolean);
  if (!accepted.some((t) => isManifestMediaType(t))) return true;
  return accepted.some((t) => t === mediaType || t === '*/*' || t === 'application/*');
}
