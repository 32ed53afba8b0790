// A registry that takes a request and never answers (seen with Distribution 2.8 during a volume
// push) must not hold the CLI for undici's 5 minutes: the client fails with a clear error once the
// answer deadline passes, and a registry that answers slowly within it still works.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/client/registry-client.js';

describe('a registry that does not answer', () => {
  let server: net.Server;
  let port: number;
  const sockets = new Set<net.Socket>();

  beforeAll(async () => {
    // Reads requests; answers /v2/ after 300 ms, never answers anything else.
    server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('data', (chunk) => {
        if (chunk.toString('latin1').startsWith('GET /v2/ ')) {
          setTimeout(() => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'), 300);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fails the request once the answer deadline passes, naming the registry', async () => {
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, answerTimeoutMs: 1000 });
    const started = Date.now();
    await expect(client.request('GET', '/v2/hung/manifests/latest')).rejects.toThrow(
      new RegExp(`GET /v2/hung/manifests/latest: http://127.0.0.1:${port} did not answer within 1 s`),
    );
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(30_000);
  });

  it('gives an upload the time to send its body on top', async () => {
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, answerTimeoutMs: 1000 });
    const body = Buffer.alloc(256 * 1024); // 2 s at the slow link's 128 KiB/s
    const started = Date.now();
    await expect(client.request('PUT', '/v2/hung/blobs/uploads/x', { body })).rejects.toThrow(/did not answer within 3 s/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
  });

  it('waits for a registry that answers within the deadline', async () => {
    const client = new RegistryClient({ registry: `127.0.0.1:${port}`, answerTimeoutMs: 5000 });
    const res = await client.request('GET', '/v2/');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{}');
  });
});
