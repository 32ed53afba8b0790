// A decorator that counts and times every call to the store it wraps (drreg_storage_* metrics),
// so an operator sees a slow or failing bucket before clients do. It changes nothing else.
import type { Readable } from 'node:stream';
import type { Metrics } from '../metrics.js';
import { canPresign, canReportKeys, type ByteRange, type KeyStatus, type ListOptions, type ObjectInfo, type ObjectStore, type OpOptions, type PutOptions } from './driver.js';

export class MeteredStore implements ObjectStore {
  readonly description: string;
  readonly timeResolutionMs: number | undefined;
  /** Present when the wrapped store can presign (storage.s3.redirect). */
  readonly presignedGetUrl?: (key: string, expirySeconds: number) => Promise<string>;
  /** Present when the wrapped store is encrypted. */
  readonly keyStatus?: () => Promise<KeyStatus>;

  constructor(
    private readonly inner: ObjectStore,
    private readonly metrics: Metrics,
  ) {
    this.description = inner.description;
    this.timeResolutionMs = inner.timeResolutionMs;
    if (canPresign(inner)) this.presignedGetUrl = (key, expirySeconds) => this.timed('presign', () => inner.presignedGetUrl(key, expirySeconds));
    if (canReportKeys(inner)) this.keyStatus = () => inner.keyStatus();
  }

  check(options?: OpOptions): Promise<void> {
    return this.timed('check', () => this.inner.check(options));
  }

  put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<number> {
    return this.timed('put', () => this.inner.put(key, body, options));
  }

  get(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable> {
    return this.timed('get', () => this.inner.get(key, range, options));
  }

  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    return this.timed('stat', () => this.inner.stat(key, options));
  }

  delete(key: string, options?: OpOptions): Promise<void> {
    return this.timed('delete', () => this.inner.delete(key, options));
  }

  /** One "list" per listing, however many pages it takes. */
  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    const end = this.metrics.storeDuration.startTimer({ operation: 'list' });
    let failed = false; // a caller that stops reading early has not seen an error
    try {
      yield* this.inner.list(prefix, options);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      end();
      this.metrics.storeOperations.inc({ operation: 'list', outcome: failed ? 'error' : 'ok' });
    }
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }

  private async timed<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const end = this.metrics.storeDuration.startTimer({ operation });
    try {
      const result = await fn();
      this.metrics.storeOperations.inc({ operation, outcome: 'ok' });
      return result;
    } catch (err) {
      this.metrics.storeOperations.inc({ operation, outcome: 'error' });
      throw err;
    } finally {
      end();
    }
  }
}
