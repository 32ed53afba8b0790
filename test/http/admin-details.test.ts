// The admin operations the console adds (GET /keys, /recovery-points/details, /storage/history)
// against a real registry, with the figures worked out here from the bytes pushed; and the
// console's own files: served only with the admin API on, with a strict CSP, never framed.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { saveKeyring } from '../../src/crypto/keyring.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_INDEX, OCI_MANIFEST, imageManifest, pushBlob, putManifest, sha256 } from './client.js';
import { validate } from './schema.js';

type Schema = Record<string, unknown>;
const spec = YAML.parse(readFileSync(path.resolve(import.meta.dirname, '../../openapi.yaml'), 'utf8')) as Schema & {
  paths: Record<string, Record<string, Schema>>;
};
const TOKEN = 'details-admin-token-0123456789';

interface Detail {
  digest: string;
  size: number;
  uniqueBytes: number;
  layers: Array<{ digest: string; size: number }>;
  manifests: Array<{ digest: string }>;
  referrers: Array<{ digest: string; artifactType?: string }>;
  config?: { digest: string };
}

describe('admin API for the console', () => {
  let registry: TestRegistry;
  let work: string;
  const keys = { old: randomBytes(32), active: randomBytes(32) };

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-details-'));
    const keyring = path.join(work, 'keyring.yml');
    await saveKeyring(keyring, { active: 'k-new', keys: new Map([['k-old', keys.old], ['k-new', keys.active]]) });
    registry = await startTestRegistry({ env: { DRREG_ADMIN_TOKEN: TOKEN, DRREG_ENCRYPTION_KEYRING: keyring } });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function call(route: string, query?: string) {
    const res = await fetch(`${registry.url}/admin/v1${route}${query ? `?${query}` : ''}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as Record<string, unknown>;
    const documented = spec.paths[route]?.get?.responses as Record<string, Schema>;
    const response = documented[String(res.status)]!;
    const schema = typeof response.$ref === 'string' ? undefined : (response.content as Record<string, { schema: Schema }>)['application/json']!.schema;
    if (schema) expect(validate(body, schema, spec)).toEqual([]);
    expect(res.headers.get('cache-control')).toBe('no-store');
    return { status: res.status, body };
  }

  /** Pushes an image of these blobs (config first) and returns its manifest bytes and digest. */
  async function image(repo: string, ref: string, config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}) {
    for (const b of [config, ...layers]) await pushBlob(registry.url, repo, b);
    const put = await putManifest(registry.url, repo, ref, { ...imageManifest(config, layers), ...extra }, OCI_MANIFEST);
    expect(put.res.status).toBe(201);
    return put;
  }

  it('gives each point its size and the bytes only it holds, across repositories', async () => {
    const shared = randomBytes(5000); // in both systems: nobody's alone
    const a1 = randomBytes(3000);
    const a2 = randomBytes(2000);
    const b1 = randomBytes(7000);
    const ca1 = Buffer.from('{"architecture":"amd64","os":"linux","n":"a1"}');
    const ca2 = Buffer.from('{"architecture":"amd64","os":"linux","n":"a2"}');
    const cb = Buffer.from('{"architecture":"amd64","os":"linux","n":"b"}');
    const p1 = await image('sys/a', 'latest', ca1, [shared, a1]);
    const p2 = await image('sys/a', 'latest', ca2, [shared, a2]);
    const pb = await image('sys/b', 'latest', cb, [shared, b1]);
    // A referrer of p2 (say a volume snapshot): part of p2, held by nothing else.
    const vol = randomBytes(4000);
    const empty = Buffer.from('{}');
    await pushBlob(registry.url, 'sys/a', vol);
    await pushBlob(registry.url, 'sys/a', empty);
    const artifact = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.volume-snapshot.v1+tar',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: empty.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(vol), size: vol.length }],
      subject: { mediaType: OCI_MANIFEST, digest: p2.digest, size: p2.bytes.length },
    };
    const artifactBytes = Buffer.from(JSON.stringify(artifact));
    expect((await putManifest(registry.url, 'sys/a', sha256(artifactBytes), artifactBytes.toString(), OCI_MANIFEST)).res.status).toBe(201);

    const a = await call('/recovery-points/details', 'repository=sys/a');
    expect(a.status).toBe(200);
    const byDigest = new Map((a.body.points as Detail[]).map((p) => [p.digest, p]));
    expect([...byDigest.keys()].sort()).toEqual([p1.digest, p2.digest].sort());
    const d1 = byDigest.get(p1.digest)!;
    const d2 = byDigest.get(p2.digest)!;
    expect(d1.size).toBe(p1.bytes.length + ca1.length + shared.length + a1.length);
    expect(d1.uniqueBytes).toBe(p1.bytes.length + ca1.length + a1.length);
    expect(d1.layers.map((l) => [l.digest, l.size])).toEqual([
      [sha256(shared), shared.length],
      [sha256(a1), a1.length],
    ]);
    expect(d1.config?.digest).toBe(sha256(ca1));
    const referrerBytes = artifactBytes.length + empty.length + vol.length;
    expect(d2.size).toBe(p2.bytes.length + ca2.length + shared.length + a2.length + referrerBytes);
    expect(d2.uniqueBytes).toBe(p2.bytes.length + ca2.length + a2.length + referrerBytes);
    expect(d2.referrers.map((r) => [r.digest, r.artifactType])).toEqual([[sha256(artifactBytes), artifact.artifactType]]);

    const b = await call('/recovery-points/details', 'repository=sys/b');
    const db = (b.body.points as Detail[])[0]!;
    expect(db.digest).toBe(pb.digest);
    expect(db.uniqueBytes).toBe(pb.bytes.length + cb.length + b1.length);

    // An index: its images count towards it.
    const cfg = Buffer.from('{"architecture":"arm64","os":"linux"}');
    const layer = randomBytes(1500);
    const img = await image('sys/c', sha256(JSON.stringify(imageManifest(cfg, [layer]))), cfg, [layer]);
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: img.digest, size: img.bytes.length, platform: { os: 'linux', architecture: 'arm64' } }] };
    const put = await putManifest(registry.url, 'sys/c', 'v1', index, OCI_INDEX);
    const c = await call('/recovery-points/details', 'repository=sys/c');
    const dc = (c.body.points as Detail[])[0]!;
    expect(dc.digest).toBe(put.digest);
    expect(dc.manifests.map((m) => m.digest)).toEqual([img.digest]);
    expect(dc.size).toBe(put.bytes.length + img.bytes.length + cfg.length + layer.length);

    expect((await call('/recovery-points/details', 'repository=Not/Valid')).status).toBe(400);
  });

  it('draws storage over time from the points as they arrived, ending at the storage figures', async () => {
    const history = await call('/storage/history');
    const samples = history.body.samples as Array<{ at: string; points: number; logicalBytes: number; uniqueBytes: number }>;
    expect(samples.map((s) => s.points)).toEqual(samples.map((_, i) => i + 1));
    expect(samples.map((s) => s.at)).toEqual(samples.map((s) => s.at).sort());
    for (let i = 1; i < samples.length; i++) expect(samples[i]!.uniqueBytes).toBeGreaterThanOrEqual(samples[i - 1]!.uniqueBytes);
    const storage = (await call('/storage')).body;
    // Every blob here belongs to some point (no untagged pushes left over): the curves end at the totals.
    expect(samples.at(-1)!.uniqueBytes).toBe(storage.uniqueBytes);
    expect(samples.at(-1)!.logicalBytes).toBe(storage.logicalBytes);
  });

  it('reports the keys without their material', async () => {
    const r = await call('/keys');
    expect(r.body).toEqual({
      encrypted: true,
      activeKey: 'k-new',
      keys: [
        { id: 'k-old', active: false, dataKeys: 0 },
        { id: 'k-new', active: true, dataKeys: 1 },
      ],
      missingKeys: [],
      rotationPending: false,
    });
    const text = JSON.stringify(r.body);
    for (const k of Object.values(keys)) {
      expect(text).not.toContain(k.toString('base64'));
      expect(text).not.toContain(k.toString('hex'));
    }
  });

  it('serves the console with a strict policy, revalidated, and nothing but its files', async () => {
    const page = await fetch(`${registry.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/); // no inline style or handlers
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from elsewhere
    const etag = page.headers.get('etag')!;
    expect((await fetch(`${registry.url}/console/`, { headers: { 'If-None-Match': etag } })).status).toBe(304);
    const js = await fetch(`${registry.url}/console/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('content-security-policy')).toBe(csp);
    const redirect = await fetch(`${registry.url}/console`, { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([308, '/console/']);
    for (const p of ['/console/nope.js', '/console/%2e%2e/package.json', '/console/..%2fpackage.json', '/console/sub/app.js']) {
      expect((await fetch(`${registry.url}${p}`)).status, p).toBe(404);
    }
    expect((await fetch(`${registry.url}/console/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('console and keys without encryption or admin API', () => {
  let plain: TestRegistry;
  let closed: TestRegistry;
  beforeAll(async () => {
    [plain, closed] = await Promise.all([startTestRegistry({ env: { DRREG_ADMIN_TOKEN: TOKEN } }), startTestRegistry()]);
  });
  afterAll(async () => {
    await plain?.stop();
    await closed?.stop();
  });

  it('reports an unencrypted store', async () => {
    const res = await fetch(`${plain.url}/admin/v1/keys`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(await res.json()).toEqual({ encrypted: false, keys: [], missingKeys: [] });
  });

  it('answers 404 for the console when the admin API is off, and says why', async () => {
    const res = await fetch(`${closed.url}/console/`);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('needs the admin API');
  });
});
