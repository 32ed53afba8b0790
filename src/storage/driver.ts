// The object-store contract every storage driver implements (filesystem, s3) and every
// decorator keeps (encrypted, cached). Everything the registry persists is an object under a key;
// there is no other state, so any number of registry processes can share one store.
//
// Keys are "/"-separated, without empty, "." or ".." segments, and no key is also the "folder" of
// another ("a" and "a/b" never both exist), so a filesystem can hold them as files.
// src/registry/paths.ts guarantees this.
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
}

/**
 * Inclusive byte range, as HTTP writes it; `end` omitted means "to the last byte". A range whose
 * `end` is past the object's last byte fails with IntegrityError (before or while streaming): the
 * object is shorter than whoever recorded its size knew, and a short read must never look whole.
 */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface OpOptions {
  /** Aborts the operation (and any partial write) when the client goes away. */
  signal?: AbortSignal;
  /**
   * A driver calls this with true while the operation waits for the process's transfer memory
   * (storage.s3.memoryBudget) and with false when it goes on. Waiting for memory is not the store
   * stalling: the deadline decorator stops its stall clock meanwhile. Decorators pass it down.
   */
  onMemoryWait?: (waiting: boolean) => void;
}

export interface PutOptions extends OpOptions {
  /** Known length of a streamed body; lets drivers avoid buffering. */
  size?: number;
}

export interface ListOptions extends OpOptions {
  /** Only keys strictly greater than this one (full key, not relative to the prefix). */
  startAfter?: string;
}

export interface ObjectReader {
  /** Streams an object, or the inclusive range of it. Throws ObjectNotFoundError. */
  get(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable>;
  /** Size and modification time, or undefined when the object does not exist. */
  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined>;
}

export interface ObjectWriter {
  /**
   * Writes a whole object atomically: readers see the old object (or none) until the new one is
   * complete. A failed or aborted put leaves nothing behind. Returns the bytes written.
   */
  put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<number>;
  /** Deletes an object; deleting a missing object is not an error. */
  delete(key: string, options?: OpOptions): Promise<void>;
}

export interface ObjectLister {
  /** Every object whose key starts with `prefix`, in ascending byte order of the key. */
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo>;
}

/**
 * A read stream whose chunks' memory the consumer may hand back once it is done with them (written
 * to a socket), so a large read reuses a few buffers instead of allocating one per chunk. Optional:
 * a consumer that does not call recycle() leaves the chunks to the garbage collector.
 */
export interface RecyclingStream extends Readable {
  recycle(chunk: Buffer): void;
}

export function isRecycling(stream: Readable): stream is RecyclingStream {
  return typeof (stream as Partial<RecyclingStream>).recycle === 'function';
}

/** Stores whose objects clients can fetch directly (S3 presigned URLs). */
export interface PresignedReader {
  presignedGetUrl(key: string, expirySeconds: number): Promise<string>;
}

export function canPresign(store: object): store is PresignedReader {
  return typeof (store as Partial<PresignedReader>).presignedGetUrl === 'function';
}

/** Encrypted stores: key ids and what each wraps, for status pages (never key material). */
export interface KeyStatus {
  activeKey: string;
  keys: Array<{ id: string; active: boolean; dataKeys: number }>;
  /** Key ids that wrap data keys but are not in the keyring (those objects cannot be read). */
  missingKeys: string[];
}

export interface KeyStatusReader {
  keyStatus(): Promise<KeyStatus>;
}

export function canReportKeys(store: object): store is KeyStatusReader {
  return typeof (store as Partial<KeyStatusReader>).keyStatus === 'function';
}

export interface ObjectStore extends ObjectReader, ObjectWriter, ObjectLister {
  /** Human-readable description for logs, e.g. "filesystem:/var/lib/dr-registry". */
  readonly description: string;
  /**
   * How coarse the store's modification times are (S3 and Swift: whole seconds). The collector
   * widens its grace by this much so a just-written object never looks older than it is.
   */
  readonly timeResolutionMs?: number;
  /** Checks the store is reachable and usable (start-up and readiness). */
  check(options?: OpOptions): Promise<void>;
  /** Releases sockets and timers. */
  close?(): Promise<void>;
}
