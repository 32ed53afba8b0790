// The raw requests of the differential test: the same list goes to dr-registry and to CNCF
// Distribution 2.8. A case may depend on earlier ones through the per-target state (upload
// locations differ between registries).
import { createHash } from 'node:crypto';
import http from 'node:http';

export interface Target {
  url: string;
  state: Record<string, string>;
}

export interface Outcome {
  status: number;
  codes: string[];
  headers: Record<string, string | null>;
}

export interface Case {
  name: string;
  run(t: Target): Promise<Outcome>;
  /** Response headers whose presence must agree too. */
  headers?: string[];
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

export const layer = Buffer.from('layer bytes for the differential test\n'.repeat(100));
export const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const missing = sha256('never uploaded');

export const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: sha256(layer) }],
  }),
);
const manifestMissingLayer = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 5, digest: missing }],
  }),
);

/** One raw request on a fresh connection: no path normalisation, no keep-alive surprises. */
async function send(t: Target, method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer | string } = {}) {
  const url = new URL(path.startsWith('http') ? path : `${t.url}${path}`);
  const body = init.body === undefined ? undefined : Buffer.from(init.body);
  const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        agent: false,
        headers: { ...init.headers, ...(body ? { 'Content-Length': String(body.length) } : {}) },
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers, text: Buffer.concat(chunks).toString('utf8') }));
        r.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  let codes: string[] = [];
  try {
    codes = ((JSON.parse(res.text) as { errors?: Array<{ code: string }> }).errors ?? []).map((e) => e.code).sort();
  } catch {
    // not JSON: no error codes
  }
  const headers: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : (v ?? null);
  return { res: { headers: { get: (name: string) => headers[name.toLowerCase()] ?? null } }, outcome: { status: res.status, codes, headers } };
}

/** Upload URLs may be absolute (Distribution) or relative (dr-registry), with or without a query. */
function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

const simple = (name: string, method: string, path: string, init?: Parameters<typeof send>[3], headers?: string[]): Case => ({
  name,
  headers,
  run: async (t) => (await send(t, method, path, init)).outcome,
});

export const cases: Case[] = [
  simple('base endpoint', 'GET', '/v2/', undefined, ['docker-distribution-api-version']),
  simple('HEAD unknown blob', 'HEAD', `/v2/diff/app/blobs/${missing}`),
  simple('GET unknown blob', 'GET', `/v2/diff/app/blobs/${missing}`),
  simple('GET blob with malformed digest', 'GET', '/v2/diff/app/blobs/sha256:abc'),
  simple('monolithic upload, right digest', 'POST', `/v2/diff/app/blobs/uploads/?digest=${sha256(layer)}`, { body: layer, headers: { 'Content-Type': 'application/octet-stream' } }, ['location', 'docker-content-digest']),
  {
    name: 'POST then PUT the layer',
    headers: ['location', 'docker-content-digest'],
    run: async (t) => {
      const { res } = await send(t, 'POST', '/v2/diff/app/blobs/uploads/');
      const location = new URL(res.headers.get('location')!, t.url).toString();
      return (await send(t, 'PUT', withDigest(location, sha256(layer)), { body: layer, headers: { 'Content-Type': 'application/octet-stream' } })).outcome;
    },
  },
  simple('monolithic upload, wrong digest', 'POST', `/v2/diff/app/blobs/uploads/?digest=${missing}`, { body: layer, headers: { 'Content-Type': 'application/octet-stream' } }),
  simple('HEAD uploaded blob', 'HEAD', `/v2/diff/app/blobs/${sha256(layer)}`, undefined, ['docker-content-digest', 'content-length']),
  simple('GET blob range', 'GET', `/v2/diff/app/blobs/${sha256(layer)}`, { headers: { Range: 'bytes=0-9' } }, ['content-range']),
  simple('GET blob range past the end', 'GET', `/v2/diff/app/blobs/${sha256(layer)}`, { headers: { Range: `bytes=${layer.length + 10}-` } }),
  {
    name: 'start an upload',
    headers: ['location', 'range', 'docker-upload-uuid'],
    run: async (t) => {
      const { res, outcome } = await send(t, 'POST', '/v2/diff/app/blobs/uploads/');
      t.state.upload = new URL(res.headers.get('location')!, t.url).toString();
      return outcome;
    },
  },
  {
    name: 'PATCH first chunk with Content-Range',
    headers: ['location', 'range'],
    run: async (t) => {
      const { res, outcome } = await send(t, 'PATCH', t.state.upload!, {
        body: config.subarray(0, 10),
        headers: { 'Content-Range': '0-9', 'Content-Type': 'application/octet-stream' },
      });
      if (res.headers.get('location')) t.state.upload = new URL(res.headers.get('location')!, t.url).toString();
      return outcome;
    },
  },
  {
    // On its own upload: Distribution 2.8 accepts the chunk and breaks that upload.
    name: 'PATCH out-of-order chunk',
    run: async (t) => {
      const { res } = await send(t, 'POST', '/v2/diff/app/blobs/uploads/');
      const first = await send(t, 'PATCH', new URL(res.headers.get('location')!, t.url).toString(), {
        body: config.subarray(0, 10),
        headers: { 'Content-Range': '0-9', 'Content-Type': 'application/octet-stream' },
      });
      const location = new URL(first.res.headers.get('location')!, t.url).toString();
      return (await send(t, 'PATCH', location, { body: config.subarray(20, 30), headers: { 'Content-Range': '20-29', 'Content-Type': 'application/octet-stream' } })).outcome;
    },
  },
  { name: 'GET upload status', headers: ['range', 'location'], run: async (t) => (await send(t, 'GET', t.state.upload!)).outcome },
  {
    name: 'PUT to finish with the wrong digest',
    run: async (t) => (await send(t, 'PUT', withDigest(t.state.upload!, missing), { body: config.subarray(10), headers: { 'Content-Type': 'application/octet-stream' } })).outcome,
  },
  { name: 'upload gone after a failed finish', run: async (t) => (await send(t, 'GET', t.state.upload!)).outcome },
  {
    name: 'POST then PUT with the whole blob',
    run: async (t) => {
      const { res } = await send(t, 'POST', '/v2/diff/app/blobs/uploads/');
      const location = new URL(res.headers.get('location')!, t.url).toString();
      return (await send(t, 'PUT', withDigest(location, sha256(config)), { body: config, headers: { 'Content-Type': 'application/octet-stream' } })).outcome;
    },
  },
  {
    name: 'cancel an upload, then ask for it',
    run: async (t) => {
      const { res } = await send(t, 'POST', '/v2/diff/app/blobs/uploads/');
      const location = new URL(res.headers.get('location')!, t.url).toString();
      const cancelled = await send(t, 'DELETE', location);
      const after = await send(t, 'GET', location);
      return { status: cancelled.outcome.status * 1000 + after.outcome.status, codes: after.outcome.codes, headers: {} };
    },
  },
  simple('PUT to an unknown upload', 'PUT', `/v2/diff/app/blobs/uploads/00000000-0000-4000-8000-000000000000?digest=${sha256(config)}`, { body: '' }),
  simple('PUT manifest with a missing layer', 'PUT', '/v2/diff/app/manifests/broken', { body: manifestMissingLayer, headers: { 'Content-Type': DOCKER_MANIFEST } }),
  simple('PUT manifest, malformed JSON', 'PUT', '/v2/diff/app/manifests/bad', { body: '{"schemaVersion": 2,', headers: { 'Content-Type': DOCKER_MANIFEST } }),
  simple('PUT manifest by a digest that does not match', 'PUT', `/v2/diff/app/manifests/${missing}`, { body: manifest, headers: { 'Content-Type': DOCKER_MANIFEST } }),
  simple('PUT manifest by tag', 'PUT', '/v2/diff/app/manifests/v1', { body: manifest, headers: { 'Content-Type': DOCKER_MANIFEST } }, ['location', 'docker-content-digest']),
  simple('PUT manifest by digest', 'PUT', `/v2/diff/app/manifests/${sha256(manifest)}`, { body: manifest, headers: { 'Content-Type': DOCKER_MANIFEST } }),
  simple('PUT the same manifest under a second tag', 'PUT', '/v2/diff/app/manifests/v2', { body: manifest, headers: { 'Content-Type': DOCKER_MANIFEST } }),
  simple('GET manifest by tag', 'GET', '/v2/diff/app/manifests/v1', { headers: { Accept: DOCKER_MANIFEST } }, ['docker-content-digest', 'content-type']),
  simple('HEAD manifest by digest', 'HEAD', `/v2/diff/app/manifests/${sha256(manifest)}`, { headers: { Accept: DOCKER_MANIFEST } }, ['docker-content-digest', 'content-length']),
  simple('GET unknown tag', 'GET', '/v2/diff/app/manifests/nope', { headers: { Accept: DOCKER_MANIFEST } }),
  simple('GET manifest of an unknown repository', 'GET', '/v2/diff/none/manifests/v1', { headers: { Accept: DOCKER_MANIFEST } }),
  simple('tags list', 'GET', '/v2/diff/app/tags/list'),
  simple('tags list, first page', 'GET', '/v2/diff/app/tags/list?n=1', undefined, ['link']),
  simple('tags list of an unknown repository', 'GET', '/v2/diff/none/tags/list'),
  simple('catalog', 'GET', '/v2/_catalog'),
  simple('mount from a repository that has the blob', 'POST', `/v2/diff/other/blobs/uploads/?mount=${sha256(layer)}&from=diff/app`, undefined, ['location']),
  simple('mount from a repository that lacks it', 'POST', `/v2/diff/third/blobs/uploads/?mount=${sha256(layer)}&from=diff/none`, undefined, ['location']),
  simple('DELETE manifest by tag', 'DELETE', '/v2/diff/app/manifests/v2'),
  simple('DELETE blob link', 'DELETE', `/v2/diff/other/blobs/${sha256(layer)}`),
  simple('GET deleted blob link', 'GET', `/v2/diff/other/blobs/${sha256(layer)}`),
  simple('DELETE manifest by digest', 'DELETE', `/v2/diff/app/manifests/${sha256(manifest)}`),
  simple('GET deleted manifest', 'GET', `/v2/diff/app/manifests/${sha256(manifest)}`, { headers: { Accept: DOCKER_MANIFEST } }),
  simple('GET tag of a deleted manifest', 'GET', '/v2/diff/app/manifests/v1', { headers: { Accept: DOCKER_MANIFEST } }),
  simple('DELETE unknown manifest', 'DELETE', `/v2/diff/app/manifests/${missing}`),
  simple('upper-case repository name', 'GET', '/v2/Diff/App/tags/list'),
  simple('referrers of a manifest', 'GET', `/v2/diff/app/referrers/${sha256(manifest)}`),
  simple('tags list with a malformed n', 'GET', '/v2/diff/app/tags/list?n=abc'),
  simple('manifest over 4 MiB', 'PUT', '/v2/diff/app/manifests/huge', {
    body: Buffer.concat([Buffer.from('{"schemaVersion":2,"pad":"'), Buffer.alloc(4 * 1024 * 1024 + 10, 'a'), Buffer.from('"}')]),
    headers: { 'Content-Type': OCI_MANIFEST },
  }),
];
