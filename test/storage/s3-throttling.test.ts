// S3 throttles by answering 503 SlowDown and expects clients to try again. A real Swift behind a
// proxy that throttles the first requests of a kind: idempotent calls get through after a retry
// or two; a store that keeps throttling is reported unavailable after three tries, with the reason.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageUnavailableError } from '../../src/storage/errors.js';
import { S3Store } from '../../src/storage/s3.js';
import { readAll } from '../../src/storage/streams.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

/** Forwards to Swift, unchanged (the Host header too, which the signature covers), except that it throttles on demand. */
class ThrottlingProxy {
  /** Requests of this method still to be refused with `status` (503 SlowDown, or 429). */
  throttle = { method: '', remaining: 0, status: 503 };
  /** Requests of each method that reached the proxy. */
  readonly seen = new Map<string, number>();
  private readonly server: http.Server;

  constructor(private readonly target: URL) {
    this.server = http.createServer((req, res) => {
      this.seen.set(req.method!, (this.seen.get(req.method!) ?? 0) + 1);
      if (req.method === this.throttle.method && this.throttle.remaining > 0) {
        this.throttle.remaining--;
        req.resume();
        res.writeHead(this.throttle.status, { 'Content-Type': 'application/xml' }).end(SLOW_DOWN);
        return;
      }
      const upstream = http.request(
        { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Throttles the next `count` requests of `method`; returns a counter of that method's requests from now on. */
  arm(method: string, count: number, status = 503): () => number {
    this.throttle = { method, remaining: count, status };
    const before = this.seen.get(method) ?? 0;
    return () => (this.seen.get(method) ?? 0) - before;
  }
}

describe('s3 driver under throttling', () => {
  const options = swiftOptions();
  const proxy = new ThrottlingProxy(new URL(options.endpoint));
  let store: S3Store;

  beforeAll(async () => {
    store = new S3Store({ ...options, endpoint: await proxy.start() });
    await store.check();
  });
  afterAll(async () => {
    await store?.close();
    await proxy.stop();
    await removeBucket(options);
  });

  it('retries a PUT, a GET of a range, a stat, a list and a DELETE that were throttled twice', async () => {
    const body = randomBytes(10_000);
    let requests = proxy.arm('PUT', 2);
    expect(await store.put('a/object', body)).toBe(body.length);
    expect(requests()).toBe(3);

    requests = proxy.arm('HEAD', 2);
    expect((await store.stat('a/object'))?.size).toBe(body.length);
    expect(requests()).toBe(3);

    requests = proxy.arm('GET', 2); // the list page
    const listed: string[] = [];
    for await (const obj of store.list('a/')) listed.push(obj.key);
    expect(listed).toEqual(['a/object']);
    expect(requests()).toBe(3);

    requests = proxy.arm('DELETE', 2);
    await store.delete('a/object');
    expect(requests()).toBe(3);
    expect(await store.stat('a/object')).toBeUndefined();
  });

  it('reads a throttled range intact', async () => {
    const body = randomBytes(100_000);
    await store.put('b/large', body);
    const requests = proxy.arm('GET', 2);
    const back = await readAll(await store.get('b/large', { start: 1, end: body.length - 2 }));
    expect(back.equals(body.subarray(1, body.length - 1))).toBe(true);
    expect(requests()).toBe(3);
  });

  it('gives up after three tries and says why', async () => {
    const requests = proxy.arm('PUT', 10);
    const failed = await store.put('c/never', Buffer.from('x')).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(StorageUnavailableError);
    expect((failed as Error).message).toMatch(/503/);
    expect(requests()).toBe(3);
    proxy.arm('PUT', 0);
    expect(await store.stat('c/never')).toBeUndefined(); // nothing half-written
  });
  it('retries a 429 too', async () => {
    const requests = proxy.arm('PUT', 1, 429);
    await store.put('d/object', Buffer.from('y'));
    expect(requests()).toBe(2);
  });

  it('stops retrying once the put is aborted, and stores nothing', async () => {
    const requests = proxy.arm('PUT', 10);
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('client went away')), 150);
    const started = Date.now();
    const failed = await store.put('e/aborted', Buffer.from('z'), { signal: abort.signal }).catch((err: unknown) => err);
    expect((failed as Error).message).toMatch(/client went away/);
    expect(Date.now() - started).toBeLessThan(400); // not the whole backoff
    expect(requests()).toBeLessThanOrEqual(2);
    proxy.arm('PUT', 0);
    expect(await store.stat('e/aborted')).toBeUndefined();
  });
});
