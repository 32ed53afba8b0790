// Store deadlines (src/storage/deadline.ts) bound the store, not the client: a push whose client
// pauses longer than the idle deadline between chunks, and a pull whose client stops reading as
// long, both complete. (The hung-store side is test/scale/store-hang.test.ts, on real Swift.)
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { storeFactories } from '../helpers/stores.js';

const PAUSE_MS = 1500; // longer than the 1 s progress deadline below

describe.each(storeFactories())('store deadlines on $name', ({ make }) => {
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const made = await make();
    cleanup = made.cleanup;
    registry = await startTestRegistry({ store: made.store, env: { DRREG_STORAGE_DEADLINES_IDLE: '1s' } });
  });
  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  it('do not cut a slow client', async () => {
    const blob = randomBytes(3 * 1024 * 1024);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const start = await fetch(`${registry.url}/v2/slow/app/blobs/uploads/`, { method: 'POST' });
    const location = new URL(start.headers.get('location')!, registry.url);
    location.searchParams.set('digest', digest);
    // PUT the whole blob in three pieces, pausing between them.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(location, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': blob.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      void (async () => {
        for (let i = 0; i < 3; i++) {
          req.write(blob.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
          await sleep(PAUSE_MS);
        }
        req.end();
      })();
    });
    expect(status).toBe(201);

    // Pull it, pausing the reading side after the first chunk.
    const pulled = await new Promise<Buffer>((resolve, reject) => {
      http.get(`${registry.url}/v2/slow/app/blobs/${digest}`, (res) => {
        const chunks: Buffer[] = [];
        let paused = false;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (!paused) {
            paused = true;
            res.pause();
            setTimeout(() => res.resume(), PAUSE_MS);
          }
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
    expect(pulled.equals(blob)).toBe(true);
  }, 60_000);
});
