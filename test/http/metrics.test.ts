// Operations: Prometheus metrics on their own port, /healthz following the store's reachability,
// and the request log.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type RequestLine, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, imageManifest, pushBlob, putManifest, sha256 } from './client.js';

/** The value of one sample line of the Prometheus text, e.g. `name{a="b"}`; undefined if absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry({ env: { DRREG_METRICS_LISTEN: '127.0.0.1:0', DRREG_GC_SWEEPDELAY: '10ms' } });
  });
  afterAll(() => registry?.stop());

  const scrape = async () => {
    const r = await fetch(`${registry.metricsUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    return r.text();
  };

  it('counts requests, bytes in and out, store calls and collections, without repository names', async () => {
    const before = await scrape();
    const layer = randomBytes(300_000);
    const config = Buffer.from('{"os":"linux"}');
    await pushBlob(registry.url, 'ops/app', config);
    await pushBlob(registry.url, 'ops/app', layer);
    await putManifest(registry.url, 'ops/app', 'v1', imageManifest(config, [layer]), OCI_MANIFEST);
    expect(Buffer.from(await (await fetch(`${registry.url}/v2/ops/app/blobs/${sha256(layer)}`)).arrayBuffer()).equals(layer)).toBe(true);
    await registry.maintenance.runGc({ dryRun: false });
    await new Promise((r) => setTimeout(r, 50)); // responses end (and are counted) after the client has them

    const after = await scrape();
    const delta = (series: string) => (sample(after, series) ?? 0) - (sample(before, series) ?? 0);
    expect(delta('drreg_http_requests_total{method="PUT",route="manifest",status="201"}')).toBe(1);
    expect(delta('drreg_http_requests_total{method="GET",route="blob",status="200"}')).toBe(1);
    expect(delta('drreg_http_received_bytes_total{route="upload"}')).toBeGreaterThanOrEqual(layer.length + config.length);
    expect(delta('drreg_http_sent_bytes_total{route="blob"}')).toBeGreaterThanOrEqual(layer.length);
    expect(delta('drreg_http_request_duration_seconds_count{method="PUT",route="manifest"}')).toBe(1);
    expect(delta('drreg_storage_operations_total{operation="put",outcome="ok"}')).toBeGreaterThanOrEqual(4);
    expect(delta('drreg_storage_operations_total{operation="list",outcome="ok"}')).toBeGreaterThan(0);
    expect(delta('drreg_gc_runs_total{outcome="ok"}')).toBe(1);
    expect(sample(after, 'drreg_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Repository names appear only as the RPO gauges' labels (the operator names a bounded set of
    // systems; issue 14 asks for them there), never in request, byte or store metrics.
    const unlabelled = after.split('\n').filter((line) => !line.startsWith('drreg_rpo_'));
    expect(unlabelled.join('\n')).not.toContain('ops/app');
  });

  it('counts a request the client abandons as aborted, not as a status it never got', async () => {
    const before = await scrape();
    const start = await fetch(`${registry.url}/v2/ops/abandoned/blobs/uploads/`, { method: 'POST' });
    const location = new URL(start.headers.get('location')!, registry.url);
    const req = http.request({ host: location.hostname, port: location.port, path: location.pathname, method: 'PATCH' });
    req.on('error', () => undefined);
    req.write(randomBytes(100_000));
    await new Promise((r) => setTimeout(r, 100));
    req.destroy(); // the client goes away mid-body
    await new Promise((r) => setTimeout(r, 200));
    const after = await scrape();
    const series = 'drreg_http_requests_total{method="PATCH",route="upload",status="aborted"}';
    expect((sample(after, series) ?? 0) - (sample(before, series) ?? 0)).toBe(1);
    expect(after).not.toContain('method="PATCH",route="upload",status="404"');
  });

  it('is served on its own port only', async () => {
    expect((await fetch(`${registry.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${registry.metricsUrl}/other`)).status).toBe(404);
  });
});

describe('/healthz', () => {
  it('answers 200 while the store answers and 503 once it does not, without a token', async () => {
    const registry = await startTestRegistry({ env: { DRREG_AUTH_SECRET: randomBytes(32).toString('base64url') } });
    try {
      const r = await fetch(`${registry.url}/healthz`);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ status: 'ok' });
      // Other methods: the OCI error body, like every other refusal.
      const post = await fetch(`${registry.url}/healthz`, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
      expect(((await post.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNSUPPORTED');
      // The storage root becomes a plain file: every store call now fails.
      await rm(registry.root, { recursive: true, force: true });
      await writeFile(registry.root, 'not a directory');
      await new Promise((resolve) => setTimeout(resolve, 1100)); // past the one-second probe cache
      const down = await fetch(`${registry.url}/healthz`);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ status: 'unavailable' });
    } finally {
      await registry.stop();
      await rm(registry.root, { force: true });
    }
  });
});

describe('request log', () => {
  it('logs one line per request with its id and every byte it moved, and echoes the id', async () => {
    const requests: RequestLine[] = [];
    const registry = await startTestRegistry({ requests });
    try {
      const blob = randomBytes(200_000);
      const up = await fetch(`${registry.url}/v2/ops/log/blobs/uploads/?digest=${sha256(blob)}`, {
        method: 'POST',
        body: blob,
        headers: { 'X-Request-Id': 'push-0001' },
      });
      expect(up.status).toBe(201);
      expect(up.headers.get('x-request-id')).toBe('push-0001');
      const get = await fetch(`${registry.url}/v2/ops/log/blobs/${sha256(blob)}`, { headers: { 'X-Request-Id': 'bad id with spaces' } });
      expect(Buffer.from(await get.arrayBuffer()).length).toBe(blob.length);
      const generated = get.headers.get('x-request-id')!;
      expect(generated).toMatch(/^[0-9a-f-]{36}$/); // an unsafe id is replaced, not echoed
      await new Promise((r) => setTimeout(r, 50));

      const push = requests.find((r) => r.method === 'POST')!;
      expect(push).toMatchObject({ requestId: 'push-0001', status: 201, path: '/v2/ops/log/blobs/uploads/' });
      expect(push.bytesIn).toBeGreaterThanOrEqual(blob.length); // the whole body, the first chunk too
      const pull = requests.find((r) => r.method === 'GET' && r.requestId === generated)!;
      expect(pull.bytesOut).toBeGreaterThanOrEqual(blob.length);
      expect(pull.bytesIn).toBeLessThan(1000); // just its headers, though the connection was reused
    } finally {
      await registry.stop();
    }
  });
});
