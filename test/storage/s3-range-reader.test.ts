// Issue 12: S3 read windows are fetched straight into pooled budget buffers (s3-range-reader.ts)
// and handed back by the blob GET once its socket wrote them (s3-windows.ts). These tests read from
// the real Swift, and from tiny local servers for answers Swift never gives (a stall, too many bytes).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IntegrityError, ObjectNotFoundError, StorageUnavailableError } from '../../src/storage/errors.js';
import { S3Store } from '../../src/storage/s3.js';
import { readRangeInto } from '../../src/storage/s3-range-reader.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushBlob, sha256 } from '../http/client.js';
import { makeTestCa } from '../helpers/test-ca.js';

const MiB = 1024 * 1024;
const WINDOW = 8 * MiB;
const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readStream(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer)); // a copy: the window may be reused
  return Buffer.concat(chunks);
}

/** A local TCP server that reads one request head per connection and answers as `answer` says. */
async function rawServer(answer: (socket: net.Socket, head: string) => void): Promise<{ url: string; heads: string[]; close(): Promise<void> }> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let got = '';
    const onData = (chunk: Buffer) => {
      got += chunk.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      heads.push(got.slice(0, end));
      answer(socket, got.slice(0, end));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    heads,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The range a request head asks for. */
function rangeOf(head: string): { from: number; last: number } {
  const m = /Range: bytes=(\d+)-(\d+)/i.exec(head)!;
  return { from: Number(m[1]), last: Number(m[2]) };
}

describe('reading S3 ranges straight into window buffers (real Swift)', () => {
  const options = swiftOptions();
  let store: S3Store;
  // Three whole windows and an odd tail.
  const bytes = randomBytes(3 * WINDOW + 12_345);

  beforeAll(async () => {
    store = new S3Store({ ...options, readStallMs: 2000 });
    await store.check();
    await store.put('big', bytes, { size: bytes.length });
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    await removeBucket(options);
  });

  it.each([
    ['the whole object', 0, 3 * WINDOW + 12_344],
    ['from one byte before a window boundary to one past the next', WINDOW - 1, 3 * WINDOW],
    ['odd start and end', 7, 3 * WINDOW + 12_340],
    ['a range just over two windows', 12_345, 12_345 + 2 * WINDOW],
  ])('%s: exactly the bytes asked', async (_name, start, end) => {
    const got = await readStream(await store.get('big', { start, end }));
    expect(got.length).toBe(end - start + 1);
    expect(hash(got)).toBe(hash(bytes.subarray(start, end + 1)));
    await vi.waitFor(() => expect(store.budget.inUse).toBe(0));
  });

  it('one range of odd size lands at its place in the buffer, and nothing is written around it', async () => {
    const url = await store.presignedGetUrl('big', 60);
    const canvas = Buffer.alloc(3 * MiB + 64, 0xee);
    const into = canvas.subarray(32, 32 + 3 * MiB - 1);
    await readRangeInto({ url, from: WINDOW - 5, into, key: 'big', stallMs: 2000 });
    expect(into.equals(bytes.subarray(WINDOW - 5, WINDOW - 5 + into.length))).toBe(true);
    expect(canvas.subarray(0, 32).every((b) => b === 0xee)).toBe(true);
    expect(canvas.subarray(32 + into.length).every((b) => b === 0xee)).toBe(true);
  });

  it('an object shorter than the range read fails with IntegrityError, never a quietly short read', async () => {
    // Windows 3 and 4 are past the object's end (a short 206, then a 416).
    await expect(readStream(await store.get('big', { start: 0, end: 5 * WINDOW - 1 }))).rejects.toBeInstanceOf(IntegrityError);
    const url = await store.presignedGetUrl('big', 60);
    await expect(readRangeInto({ url, from: bytes.length - 10, into: Buffer.alloc(100), key: 'big', stallMs: 2000 })).rejects.toBeInstanceOf(IntegrityError);
    await vi.waitFor(() => expect(store.budget.inUse).toBe(0));
  });

  it('a missing object is not found, from get() itself', async () => {
    await expect(store.get('missing', { start: 0, end: 3 * WINDOW })).rejects.toBeInstanceOf(ObjectNotFoundError);
    await vi.waitFor(() => expect(store.budget.inUse).toBe(0));
  });

  it('a read destroyed or aborted midway gives every window back to the budget', async () => {
    const controller = new AbortController();
    const stream = await store.get('big', { start: 0, end: bytes.length - 1 }, { signal: controller.signal });
    const it = stream[Symbol.asyncIterator]();
    await it.next(); // one window taken; others on their way
    expect(store.budget.inUse).toBeGreaterThan(0);
    controller.abort();
    await vi.waitFor(() => expect(store.budget.inUse).toBe(0));
    const other = await store.get('big', { start: 0, end: bytes.length - 1 });
    await other[Symbol.asyncIterator]().next();
    other.destroy();
    await vi.waitFor(() => expect(store.budget.inUse).toBe(0));
  });

  it('consumers that keep every chunk (no recycling) get their own bytes while reads run side by side', async () => {
    const second = randomBytes(3 * WINDOW + 777);
    await store.put('second', second, { size: second.length });
    const reads = await Promise.all(
      [bytes, second, bytes, second].map(async (b, i) => {
        const got = await (async () => {
          const chunks: Buffer[] = [];
          for await (const c of await store.get(i % 2 ? 'second' : 'big', { start: 0, end: b.length - 1 })) chunks.push(c as Buffer); // no copy
          return chunks;
        })();
        return { want: b, got: Buffer.concat(got) };
      }),
    );
    for (const { want, got } of reads) expect(hash(got)).toBe(hash(want));
    await vi.waitFor(() => expect(store.budget.inUse).toBe(0));
  }, 60_000);
});

describe('https endpoints', () => {
  it('a range read over TLS (a TLS front to Swift) lands exactly as over plain HTTP', async () => {
    const options = swiftOptions();
    const dir = await mkdtemp(path.join(tmpdir(), 'drreg-s3tls-'));
    const ca = await makeTestCa(dir);
    const issued = await ca.server('localhost', path.join(dir, 'server'));
    const swift = new URL(options.endpoint);
    const front = tls.createServer({ cert: await readFile(issued.cert), key: await readFile(issued.key) }, (client) => {
      const upstream = net.connect(Number(swift.port), swift.hostname);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const plain = new S3Store(options);
    try {
      await plain.check();
      const bytes = randomBytes(3 * MiB + 5);
      await plain.put('obj', bytes);
      // Signed for the https endpoint (locally): the front passes the request to Swift as it is.
      const viaTls = new S3Store({ ...options, endpoint: `https://127.0.0.1:${(front.address() as AddressInfo).port}` });
      const url = await viaTls.presignedGetUrl('obj', 60);
      expect(url.startsWith('https:')).toBe(true);
      const into = Buffer.alloc(2 * MiB + 1);
      await readRangeInto({ url, from: 12_345, into, key: 'obj', stallMs: 5000, tls: { ca: await readFile(ca.cert) } });
      expect(into.equals(bytes.subarray(12_345, 12_345 + into.length))).toBe(true);
      await viaTls.close();
    } finally {
      await plain.close();
      await new Promise((resolve) => front.close(resolve));
      await removeBucket(options);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function last_plus(extra: number) {
  return (from: number, last: number) => last - from + 1 + extra;
}

describe('store answers Swift never gives (local servers)', () => {
  it('a store that sends the head and then nothing: the window stalls (ETIMEDOUT), is tried 3 times, and the read fails as unavailable', async () => {
    const server = await rawServer((socket, head) => {
      const { from, last } = rangeOf(head);
      socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${from}-${last}/${100 * MiB}\r\nContent-Length: ${last - from + 1}\r\n\r\n`);
      socket.write(Buffer.alloc(1000)); // then silence
    });
    try {
      const into = Buffer.alloc(4096);
      const direct = readRangeInto({ url: `${server.url}/b/k`, from: 0, into, key: 'k', stallMs: 200 });
      await expect(direct).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      server.heads.length = 0;
      const store = new S3Store({ ...swiftOptions('stalling'), endpoint: server.url, readStallMs: 200 });
      await expect(store.get('k', { start: 0, end: 40 * MiB - 1 })).rejects.toBeInstanceOf(StorageUnavailableError);
      // The first window three times (retried), the read-ahead windows as they were aborted.
      expect(server.heads.filter((h) => rangeOf(h).from === 0)).toHaveLength(3);
      await vi.waitFor(() => expect(store.budget.inUse).toBe(0));
      await store.close();
    } finally {
      await server.close();
    }
  });

  it.each([
    ['a Content-Length longer than the range', (from: number, last: number) => `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${from}-${last + 100}/${MiB}\r\nContent-Length: ${last - from + 101}\r\n\r\n`, last_plus(100)],
    ['the whole object for a range', () => `HTTP/1.1 200 OK\r\nContent-Length: ${MiB}\r\n\r\n`, () => MiB],
    ['a Content-Range that is not the one asked', (from: number, last: number) => `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${from + 1}-${last + 1}/${MiB}\r\nContent-Length: ${last - from + 1}\r\n\r\n`, last_plus(0)],
  ])('a store that sends %s: an error, and nothing is written past the window', async (_name, head, bodyBytes) => {
    const server = await rawServer((socket, request) => {
      const { from, last } = rangeOf(request);
      socket.write(head(from, last));
      socket.end(Buffer.alloc(bodyBytes(from, last), 0x41));
    });
    try {
      const canvas = Buffer.alloc(64 * 1024 + 512, 0xee);
      const into = canvas.subarray(0, 64 * 1024);
      await expect(readRangeInto({ url: `${server.url}/b/k`, from: 1000, into, key: 'k', stallMs: 2000 })).rejects.toThrow(/s3 (answer|store)/);
      expect(canvas.subarray(into.length).every((b) => b === 0xee)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('bytes after the declared length are not part of the answer: the window holds exactly its bytes', async () => {
    const server = await rawServer((socket, request) => {
      const { from, last } = rangeOf(request);
      const n = last - from + 1;
      socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${from}-${last}/${MiB}\r\nContent-Length: ${n}\r\n\r\n`);
      socket.write(Buffer.alloc(n, 0x41));
      socket.end(Buffer.alloc(5000, 0x42)); // garbage after the answer
    });
    try {
      const canvas = Buffer.alloc(64 * 1024 + 512, 0xee);
      const into = canvas.subarray(0, 64 * 1024);
      await readRangeInto({ url: `${server.url}/b/k`, from: 0, into, key: 'k', stallMs: 2000 });
      expect(into.every((b) => b === 0x41)).toBe(true);
      expect(canvas.subarray(into.length).every((b) => b === 0xee)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("error answers carry the status and the store's code; 503 SlowDown is retried, then unavailable", async () => {
    const body = '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
    const server = await rawServer((socket) => socket.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
    try {
      await expect(readRangeInto({ url: `${server.url}/b/k`, from: 0, into: Buffer.alloc(10), key: 'k', stallMs: 2000 })).rejects.toMatchObject({ status: 503, code: 'SlowDown' });
      server.heads.length = 0;
      const store = new S3Store({ ...swiftOptions('slowdown'), endpoint: server.url });
      const err = await store.get('k', { start: 0, end: 20 * MiB }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect(String((err as Error).message)).toContain('SlowDown');
      expect(server.heads.filter((h) => rangeOf(h).from === 0)).toHaveLength(3);
      await store.close();
    } finally {
      await server.close();
    }
  });

  it('the abort signal closes the connection at once', async () => {
    let closed = false;
    const server = await rawServer((socket) => socket.on('close', () => (closed = true))); // never answers
    try {
      const controller = new AbortController();
      const read = readRangeInto({ url: `${server.url}/b/k`, from: 0, into: Buffer.alloc(10), key: 'k', stallMs: 60_000, signal: controller.signal });
      await vi.waitFor(() => expect(server.heads).toHaveLength(1));
      controller.abort(new Error('client gone'));
      await expect(read).rejects.toThrow('client gone');
      await vi.waitFor(() => expect(closed).toBe(true));
    } finally {
      await server.close();
    }
  });
});


describe('pulls through the HTTP API recycle windows only once the socket wrote them', () => {
  // Room for a stalled pull's windows and one more pull: buffers are refilled across pulls.
  const options = { ...swiftOptions(), memoryBudget: 8 * WINDOW };
  let s3: S3Store;
  let registry: TestRegistry;
  const blobs = [randomBytes(60 * MiB + 3), randomBytes(45 * MiB + 11)];
  const digests: string[] = [];

  beforeAll(async () => {
    s3 = new S3Store(options);
    registry = await startTestRegistry({ store: s3 });
    for (const b of blobs) digests.push(await pushBlob(registry.url, 'pull/test', b));
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await removeBucket(options);
  });

  /**
   * GETs a blob and hashes it. With `holdUntil`, stops reading after the first bytes until that
   * promise settles: the registry's socket cannot finish writing its first window meanwhile, so a
   * window handed back before the socket wrote it would be refilled under it and the digest differ.
   */
  function pull(digest: string, holdUntil?: Promise<unknown>): Promise<string> {
    return new Promise((resolve, reject) => {
      http
        .get(`${registry.url}/v2/pull/test/blobs/${digest}`, (res) => {
          const h = createHash('sha256');
          let held = false;
          res.on('data', (c: Buffer) => {
            h.update(c);
            if (holdUntil && !held) {
              held = true;
              res.pause();
              void holdUntil.finally(() => res.resume());
            }
          });
          res.on('end', () => resolve(`sha256:${h.digest('hex')}`));
          res.on('error', reject);
        })
        .on('error', reject);
    });
  }

  it('a stalled pull and pulls beside it each get exactly their bytes; the windows are reused and the budget comes back whole', async () => {
    const allocations = s3.budget.allocations;
    const fast = Promise.all([pull(digests[1]!), pull(digests[0]!)]);
    // The stalled pull holds its windows while the others run through the rest of the budget.
    await vi.waitFor(() => expect(s3.budget.inUse).toBeGreaterThan(0));
    const stalled = pull(digests[0]!, fast);
    const again = await fast;
    expect(again).toEqual([digests[1], digests[0]]);
    expect(await stalled).toBe(digests[0]);
    expect(digests[0]).toBe(sha256(blobs[0]!));
    await vi.waitFor(() => expect(s3.budget.inUse).toBe(0));
    // 22 windows were read: fewer buffers were allocated (windows refilled once written; a pull
    // that has not handed back a window yet may give its budget to the next one, under contention).
    expect(s3.budget.allocations - allocations).toBeLessThan(22);
    expect(s3.budget.highWater).toBeLessThanOrEqual(options.memoryBudget);
  }, 120_000);

  it('pulls one after another reuse the same few buffers', async () => {
    await pull(digests[0]!); // warms the pool
    const allocations = s3.budget.allocations;
    for (let i = 0; i < 3; i++) expect(await pull(digests[i % 2]!)).toBe(digests[i % 2]);
    // 22 windows, filled into buffers of the pool (a window handed back just after its pull ended
    // may miss the next pull's start).
    expect(s3.budget.allocations - allocations).toBeLessThanOrEqual(2);
    await vi.waitFor(() => expect(s3.budget.inUse).toBe(0));
  }, 120_000);
});
