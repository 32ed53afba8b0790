// Domain errors, one per OCI error code. The registry raises them; only the http layer knows
// which status each becomes (src/http/errors.ts).

export type ErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE';

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

export const blobUnknown = (digest: string) => new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
export const uploadUnknown = (id: string) =>
  new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uploadId: id.slice(0, 100) });
export const manifestUnknown = (reference: string) =>
  new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { reference: reference.slice(0, 200) });
export const nameUnknown = (name: string) =>
  new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name });
export const manifestInvalid = (reason: string) =>
  new RegistryError('MANIFEST_INVALID', 'manifest invalid', { reason });
export const digestInvalid = (reason: string, detail: Record<string, unknown> = {}) =>
  new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', { reason, ...detail });
