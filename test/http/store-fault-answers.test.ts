// A store that fails while its client is still connected is a server error, not a client that
// went away: the client gets 503 UNAVAILABLE (the OCI error body, Retry-After) and the failure is
// logged. The store connection is reset (ECONNRESET, the same code a vanished client leaves) by a
// TCP relay to the real Swift that stops relaying; the request body was read in full before.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/storage/s3.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';
import { SWIFT_ENDPOINT } from '../services/swift.js';
import { imageManifest, OCI_MANIFEST, pushBlob, raw } from './client.js';

/** Relays TCP to Swift; when `broken`, resets every connection instead. */
function relay(target: URL) {
  let broken = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (broken) return void client.resetAndDestroy();
    sockets.add(client);
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    const end = () => {
      sockets.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return {
    server,
    listen: () => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))),
    break() {
      broken = true;
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('a store failing under a connected client', () => {
  const proxy = relay(new URL(SWIFT_ENDPOINT));
  const options = swiftOptions();
  const lines: Array<Record<string, unknown>> = [];
  let registry: TestRegistry;

  beforeAll(async () => {
    const port = await proxy.listen();
    const store = new S3Store({ ...options, endpoint: `http://127.0.0.1:${port}` });
    registry = await startTestRegistry({ store, logLines: lines });
  });
  afterAll(async () => {
    await registry?.stop();
    await proxy.close();
    await removeBucket(options);
  });

  it('answers 503 UNAVAILABLE and logs the failure, after the body was read', async () => {
    const config = randomBytes(100);
    const layer = randomBytes(1000);
    await pushBlob(registry.url, 'fault/app', config);
    await pushBlob(registry.url, 'fault/app', layer);
    proxy.break();
    const body = Buffer.from(JSON.stringify(imageManifest(config, [layer])));
    const answer = await raw(registry.url, 'PUT', '/v2/fault/app/manifests/v1', { 'Content-Type': OCI_MANIFEST }, body);
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
    expect(answer.headers['retry-after']).toBe('5');
    expect(lines.some((l) => l.msg === 'client went away')).toBe(false);
    expect(lines.some((l) => l.msg === 'request failed' && l.level === 50)).toBe(true);
  });
});
