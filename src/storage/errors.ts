// Storage-level failures. They know nothing of HTTP; the http layer maps them (503 for
// StorageUnavailableError) and the registry layer turns ObjectNotFoundError into domain errors.

export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly key: string) {
    super(`object not found: ${key}`);
  }
}

/** The backend could not be reached or refused the operation; the request may be retried. */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Stored bytes failed an integrity check (e.g. decryption); never serve them. */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${message} (object ${key})`);
  }
}

export function isNotFound(err: unknown): err is ObjectNotFoundError {
  return err instanceof ObjectNotFoundError;
}
