// A counting HTTP proxy on 127.0.0.1 in front of a registry: clients talk to it as to the
// registry, and it counts the body bytes each request sends and each response returns. The same
// proxy sits in front of every registry, so "bytes sent" means the same thing for all of them.
// Uploads are attributed to the digest they commit: the bytes of a session (POST, PATCH, PUT to
// .../blobs/uploads/<id>) are counted under the `digest` of its final PUT.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Traffic {
  /** Request body bytes of PATCH, PUT and POST under /v2/. */
  sent: number;
  /** Response body bytes of GET under /v2/. */
  received: number;
  requests: number;
  /** Body bytes of the upload sessions that committed each digest. */
  sentByDigest: Map<string, number>;
}

export interface CountingProxy {
  hostPort: string;
  /** The counts since the previous call, then starts counting afresh. */
  take(): Traffic;
  close(): Promise<void>;
}

const UPLOAD = /^\/v2\/.+\/blobs\/uploads\/([^/?]*)$/;

const empty = (): Traffic => ({ sent: 0, received: 0, requests: 0, sentByDigest: new Map() });

export async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let traffic = empty();
  const sessions = new Map<string, number>(); // upload id -> body bytes so far

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const counted = url.pathname.startsWith('/v2/');
    const upload = UPLOAD.exec(url.pathname);
    let body = 0;
    req.on('data', (c: Buffer) => (body += c.length));
    traffic.requests++;
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, up.headers);
        if (counted && req.method === 'GET') up.on('data', (c: Buffer) => (traffic.received += c.length));
        up.pipe(res);
        up.on('end', () => {
          if (!counted || !['PATCH', 'PUT', 'POST'].includes(req.method ?? '')) return;
          traffic.sent += body;
          if (!upload) return;
          const id = upload[1] ?? '';
          const total = (sessions.get(id) ?? 0) + body;
          const digest = url.searchParams.get('digest');
          if (digest && (up.statusCode ?? 0) < 300) {
            sessions.delete(id);
            traffic.sentByDigest.set(digest, (traffic.sentByDigest.get(digest) ?? 0) + total);
          } else if (id) sessions.set(id, total);
          else {
            // A POST that starts a session: its bytes (if any) go to the id in Location.
            const location = up.headers.location;
            const next = location ? UPLOAD.exec(new URL(location, 'http://proxy').pathname)?.[1] : undefined;
            if (next) sessions.set(next, total);
          }
        });
      },
    );
    out.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(out);
  });
  // Registries answer big uploads slowly (Distribution's S3 commit copies the blob): no timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    hostPort: `127.0.0.1:${port}`,
    take() {
      const t = traffic;
      traffic = empty();
      return t;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}
