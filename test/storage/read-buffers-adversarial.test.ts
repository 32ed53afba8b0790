// Review of the shared read-buffer pool (src/storage/file-io.ts): buffers handed back by one pull
// are filled by the next. Pulls of different blobs in different repositories run at once while
// clients go away mid-body, read slowly (back-pressure), ask for ranges, pipeline two GETs (and a
// HEAD) on one connection: every response that completes must carry exactly its own bytes.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_CHUNK } from '../../src/storage/file-io.js';
import { pushBlob } from '../http/client.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

type Blob = { repo: string; digest: string; bytes: Buffer };

/** Raw HTTP/1.1 requests on one socket; the bodies of the answers (HEAD: none), in order. */
function pipelined(port: number, requests: Array<{ method: string; path: string; range?: string }>, slow = false): Promise<Array<{ status: number; body: Buffer }>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const out: Array<{ status: number; body: Buffer }> = [];
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (slow) {
        // A slow reader: the server's writes back up while this client takes its time.
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      }
      for (;;) {
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = data.subarray(0, end).toString('latin1');
        const status = Number(head.split(' ')[1]);
        const length = requests[out.length]!.method === 'HEAD' ? 0 : Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (data.length < end + 4 + length) return;
        out.push({ status, body: Buffer.from(data.subarray(end + 4, end + 4 + length)) });
        data = data.subarray(end + 4 + length);
        if (out.length === requests.length) {
          socket.destroy();
          resolve(out);
          return;
        }
      }
    });
    socket.write(
      requests
        .map((r) => `${r.method} ${r.path} HTTP/1.1\r\nHost: x\r\n${r.range ? `Range: ${r.range}\r\n` : ''}\r\n`)
        .join(''),
    );
  });
}

/** A GET read slowly, so the server meets back-pressure. */
function slowGet(port: number, path: string): Promise<Buffer> {
  return pipelined(port, [{ method: 'GET', path }], true).then(([r]) => r!.body);
}

/** A GET whose client goes away after the first bytes. */
function abandoned(port: number, path: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => resolve());
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

describe('shared read buffers under adversarial clients', () => {
  let registry: TestRegistry;
  let port: number;
  const blobs: Blob[] = [];

  beforeAll(async () => {
    registry = await startTestRegistry();
    port = Number(new URL(registry.url).port);
    for (let i = 0; i < 8; i++) {
      const repo = i % 2 === 0 ? 'tenant-a/app' : 'tenant-b/secret';
      const bytes = randomBytes(4 * READ_CHUNK + 1000 * i + 7);
      blobs.push({ repo, digest: await pushBlob(registry.url, repo, bytes), bytes });
    }
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  it('every complete answer carries its own bytes', async () => {
    const path = (b: Blob) => `/v2/${b.repo}/blobs/${b.digest}`;
    for (let round = 0; round < 3; round++) {
      const checks: Array<Promise<void>> = [];
      blobs.forEach((b, i) => {
        const other = blobs[(i + 1) % blobs.length]!;
        checks.push(abandoned(port, path(b)));
        checks.push(
          pipelined(port, [
            { method: 'GET', path: path(b) },
            { method: 'HEAD', path: path(other) },
            { method: 'GET', path: path(other), range: `bytes=${READ_CHUNK - 3}-${3 * READ_CHUNK + 5}` },
            { method: 'GET', path: path(other) },
          ]).then(([whole, head, range, again]) => {
            expect(whole!.status).toBe(200);
            expect(whole!.body.equals(b.bytes)).toBe(true);
            expect(head!.status).toBe(200);
            expect(range!.status).toBe(206);
            expect(range!.body.equals(other.bytes.subarray(READ_CHUNK - 3, 3 * READ_CHUNK + 6))).toBe(true);
            expect(again!.body.equals(other.bytes)).toBe(true);
          }),
        );
        checks.push(slowGet(port, path(b)).then((body) => expect(body.equals(b.bytes)).toBe(true)));
      });
      await Promise.all(checks);
    }
  }, 120_000);
});
