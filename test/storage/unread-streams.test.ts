// A read stream destroyed before anyone reads it gives back everything it holds. Koa destroys a
// response body it never sends: a HEAD answered from the body's headers, a client gone between the
// store's answer and the response, a handler that fails after opening the blob. The deadline
// decorator and the S3 driver wrap the driver's stream in a generator (Readable.from); destroying
// such a stream before its first read only returns the generator, whose body never ran, so its
// finally never did: the driver's stream stayed open (a file handle, an S3 response socket), the
// caller's abort listener stayed on the request's signal. A windowed S3 read (src/storage/s3-windows.ts)
// must give its share of the memory budget back the same way, or every transfer waits forever.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { getEventListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ByteRange, ObjectStore, OpOptions } from '../../src/storage/driver.js';
import { DeadlineStore } from '../../src/storage/deadline.js';
import { S3Store } from '../../src/storage/s3.js';
import { waitFor } from '../helpers/cli.js';
import { removeBucket, storeFactories, swiftOptions } from '../helpers/stores.js';

const MiB = 1024 * 1024;

describe.each(storeFactories())('a deadline read destroyed unread on $name', ({ make }) => {
  let inner: ObjectStore;
  let cleanup: () => Promise<void>;
  /** The driver's streams, as the decorator received them. */
  const opened: Readable[] = [];

  beforeAll(async () => {
    const made = await make();
    inner = made.store;
    cleanup = made.cleanup;
    await inner.put('unread/object', randomBytes(64 * 1024));
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('closes the driver stream and unhooks the caller signal', async () => {
    // The real store, its get() observed: the decorator's own behaviour is under test.
    const observed = Object.create(inner) as ObjectStore;
    observed.get = async (key: string, range?: ByteRange, options?: OpOptions) => {
      const stream = await inner.get(key, range, options);
      opened.push(stream);
      return stream;
    };
    const store = new DeadlineStore(observed, { callMs: 10_000, idleMs: 20_000, maxInFlight: 64 });
    const client = new AbortController();
    const body = await store.get('unread/object', undefined, { signal: client.signal });
    expect(opened).toHaveLength(1);
    body.destroy();
    await waitFor(async () => (opened[0]!.destroyed ? true : undefined), 5000, 'the driver stream to be destroyed');
    expect(getEventListeners(client.signal, 'abort')).toHaveLength(0);
  });
});

describe('a windowed S3 read destroyed unread', () => {
  const options = { ...swiftOptions(), partSize: 5 * MiB, concurrency: 2, memoryBudget: 32 * MiB };
  let store: S3Store;

  beforeAll(async () => {
    store = new S3Store(options);
    await store.check();
    await store.put('unread/large', randomBytes(20 * MiB));
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await removeBucket(options);
  });

  it('gives its windows back to the memory budget', async () => {
    // A range longer than two read windows is read in windows, each holding budget.
    const body = await store.get('unread/large', { start: 0, end: 20 * MiB - 1 });
    expect(store.budget.inUse).toBeGreaterThan(0);
    body.destroy();
    await waitFor(async () => (store.budget.inUse === 0 ? true : undefined), 10_000, 'the budget to be returned');
  }, 60_000);

  it('closes the response of a plain read, so its socket goes back to the pool', async () => {
    // The store's own keep-alive agent: a socket in use there is a response not yet consumed.
    const agent = (store as unknown as { agent: http.Agent }).agent;
    const inUse = () => Object.values(agent.sockets).flat().length;
    await waitFor(async () => (inUse() === 0 ? true : undefined), 10_000, 'earlier requests to finish');
    const body = await store.get('unread/large');
    expect(inUse()).toBeGreaterThan(0);
    body.destroy();
    await waitFor(async () => (inUse() === 0 ? true : undefined), 10_000, 'the response socket to be released');
  }, 60_000);
});
