// Large S3 reads come as 8 MiB windows fetched in parallel. A window whose response is cut, or that
// stalls, is fetched again by itself: the read completes intact without restarting the object.
// A real Swift behind a proxy that breaks one ranged GET on demand.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/storage/s3.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';

const MiB = 1024 * 1024;

/** Forwards to Swift; the `breakNth` ranged GET from now on is cut or stalled after `after` bytes. */
class BreakingProxy {
  ranged = 0;
  plan: { nth: number; after: number; how: 'cut' | 'stall' } | undefined;
  private readonly server: http.Server;

  constructor(target: URL) {
    this.server = http.createServer((req, res) => {
      const isRanged = req.method === 'GET' && req.headers.range !== undefined;
      const n = isRanged ? ++this.ranged : 0;
      const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        const plan = this.plan;
        if (!plan || n !== plan.nth) return void answer.pipe(res);
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= plan.after) return;
          res.write(chunk.subarray(0, plan.after - sent));
          sent += chunk.length;
          if (sent >= plan.after) {
            if (plan.how === 'cut') res.destroy();
            // 'stall': nothing more is ever sent on this response
          }
        });
      });
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
}

describe('s3 windows, retried one at a time', () => {
  const options = swiftOptions();
  const proxy = new BreakingProxy(new URL(options.endpoint));
  let store: S3Store;
  const bytes = randomBytes(40 * MiB); // 5 windows
  const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  beforeAll(async () => {
    store = new S3Store({ ...options, endpoint: await proxy.start(), readStallMs: 1000 });
    await store.check();
    await store.put('big', bytes, { size: bytes.length });
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    await proxy.stop();
    await removeBucket(options);
  });

  async function readRange(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await store.get('big', { start: 0, end: bytes.length - 1 })) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  it.each([['cut', 'cut'] as const, ['stalled', 'stall'] as const])('a window %s midway is fetched again, alone', async (_name, how) => {
    proxy.ranged = 0;
    proxy.plan = { nth: 3, after: 3 * MiB, how };
    const got = await readRange();
    expect(hash(got)).toBe(hash(bytes));
    // Five windows and one more try of the broken one: nothing else was fetched again.
    expect(proxy.ranged).toBe(6);
    proxy.plan = undefined;
  }, 120_000);
});
