// The OCI Distribution API over HTTP against the real server: the behaviour the differential
// test cannot check (Distribution 2.8 lacks it) and the details clients depend on.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  errorCode,
  pushBlob,
  pushImage,
  putManifest,
  sha256,
  sha512,
} from './client.js';

let registry: TestRegistry;
let url: string;
beforeAll(async () => {
  registry = await startTestRegistry();
  url = registry.url;
});
afterAll(() => registry?.stop());

describe('base', () => {
  it('answers /v2/ with the API version header and {} ', async () => {
    const r = await fetch(`${url}/v2/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await r.json()).toEqual({});
  });
  it('gives unknown endpoints a JSON 404 and wrong methods a 405 with Allow', async () => {
    expect((await fetch(`${url}/v2/a/nothing/here`)).status).toBe(404);
    const r = await fetch(`${url}/v2/a/tags/list`, { method: 'POST' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
    expect(errorCode(await r.text())).toBe('UNSUPPORTED');
  });
});

describe('uploads', () => {
  it('streams a PATCH with chunked encoding and no Content-Length, as docker does', async () => {
    const start = await fetch(`${url}/v2/up/chunked/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const parts = [randomBytes(100_000), randomBytes(70_000), randomBytes(5)];
    const status = await new Promise<{ code: number; range: string | undefined }>((resolve, reject) => {
      const u = new URL(location, url);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PATCH' }, (res) => {
        res.resume();
        res.on('end', () => resolve({ code: res.statusCode!, range: res.headers.range }));
      });
      req.on('error', reject);
      for (const p of parts) req.write(p);
      req.end();
    });
    const whole = Buffer.concat(parts);
    expect(status).toEqual({ code: 202, range: `0-${whole.length - 1}` });
    const done = await fetch(`${url}${location}?digest=${sha256(whole)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    expect(done.headers.get('location')).toBe(`/v2/up/chunked/blobs/${sha256(whole)}`);
    expect(Buffer.from(await (await fetch(`${url}/v2/up/chunked/blobs/${sha256(whole)}`)).arrayBuffer()).equals(whole)).toBe(true);
  });

  it('commits chunks sent with Content-Range in order, and refuses an overlapping one with 416', async () => {
    const start = await fetch(`${url}/v2/up/ranges/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const whole = randomBytes(30);
    const patch = (from: number, to: number) =>
      fetch(`${url}${location}`, { method: 'PATCH', body: whole.subarray(from, to + 1), headers: { 'Content-Range': `${from}-${to}` } });
    expect((await patch(0, 9)).status).toBe(202);
    const overlap = await patch(5, 14);
    expect(overlap.status).toBe(416);
    expect(errorCode(await overlap.text())).toBe('RANGE_INVALID');
    expect((await patch(10, 29)).headers.get('range')).toBe('0-29');
    const status = await fetch(`${url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('docker-upload-uuid')).toBe(location.split('/').pop());
    expect((await fetch(`${url}${location}?digest=${sha256(whole)}`, { method: 'PUT' })).status).toBe(201);
  });

  it('accepts sha512 digests', async () => {
    const bytes = randomBytes(1000);
    const r = await fetch(`${url}/v2/up/sha512/blobs/uploads/?digest=${sha512(bytes)}`, { method: 'POST', body: bytes });
    expect(r.status).toBe(201);
    const head = await fetch(`${url}/v2/up/sha512/blobs/${sha512(bytes)}`, { method: 'HEAD' });
    expect(head.headers.get('docker-content-digest')).toBe(sha512(bytes));
    expect(head.headers.get('content-length')).toBe('1000');
  });

  it('stores the empty blob', async () => {
    const empty = Buffer.alloc(0);
    expect((await fetch(`${url}/v2/up/empty/blobs/uploads/?digest=${sha256(empty)}`, { method: 'POST', body: empty })).status).toBe(201);
    const r = await fetch(`${url}/v2/up/empty/blobs/${sha256(empty)}`);
    expect(r.status).toBe(200);
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it('does not let an upload be continued through another repository', async () => {
    const start = await fetch(`${url}/v2/up/mine/blobs/uploads/`, { method: 'POST' });
    const id = start.headers.get('location')!.split('/').pop();
    const r = await fetch(`${url}/v2/up/other/blobs/uploads/${id}`, { method: 'PATCH', body: 'x' });
    expect(r.status).toBe(404);
    expect(errorCode(await r.text())).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('mounts without from only by starting an upload', async () => {
    const digest = await pushBlob(url, 'up/src', Buffer.from('mount me'));
    const r = await fetch(`${url}/v2/up/dst/blobs/uploads/?mount=${digest}`, { method: 'POST' });
    expect(r.status).toBe(202);
    // A GET (a HEAD would link it: dedup.linkExistingOnHead is on by default).
    expect((await fetch(`${url}/v2/up/dst/blobs/${digest}`)).status).toBe(404);
  });
});

describe('manifests', () => {
  it('stores a Docker manifest list whose children the repository holds, and refuses one with a missing child', async () => {
    const child = { ...(await pushImage(url, 'm/list', 'child')), mediaType: DOCKER_MANIFEST };
    child.config.mediaType = 'application/vnd.docker.container.image.v1+json';
    const pushed = await putManifest(url, 'm/list', 'child', child, DOCKER_MANIFEST);
    expect(pushed.res.status).toBe(201);
    const list = (digests: string[]) => ({
      schemaVersion: 2,
      mediaType: DOCKER_LIST,
      manifests: digests.map((d) => ({ mediaType: DOCKER_MANIFEST, digest: d, size: pushed.bytes.length, platform: { architecture: 'amd64', os: 'linux' } })),
    });
    const ok = await putManifest(url, 'm/list', 'multi', list([pushed.digest]), DOCKER_LIST);
    expect(ok.res.status).toBe(201);
    const got = await fetch(`${url}/v2/m/list/manifests/multi`, { headers: { Accept: DOCKER_LIST } });
    expect(got.headers.get('content-type')).toBe(DOCKER_LIST);
    expect(Buffer.from(await got.arrayBuffer()).equals(ok.bytes)).toBe(true);
    const missing = await putManifest(url, 'm/list', 'broken', list([pushed.digest, sha256('absent')]), DOCKER_LIST);
    expect(missing.res.status).toBe(400);
    expect(missing.json?.errors[0]?.code).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('counts a blob of another repository as missing', async () => {
    const image = await pushImage(url, 'm/owner', 'owned');
    const r = await putManifest(url, 'm/thief', 'v1', image, OCI_MANIFEST);
    expect(r.res.status).toBe(400);
    expect(r.json?.errors[0]?.code).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('negotiates on Accept: 404 when only other manifest types are accepted', async () => {
    const image = await pushImage(url, 'm/accept', 'a');
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] as unknown[] };
    expect((await putManifest(url, 'm/accept', 'img', image, OCI_MANIFEST)).res.status).toBe(201);
    expect((await putManifest(url, 'm/accept', 'idx', index, OCI_INDEX)).res.status).toBe(201);
    expect((await fetch(`${url}/v2/m/accept/manifests/idx`, { headers: { Accept: `${OCI_MANIFEST}, ${DOCKER_MANIFEST}` } })).status).toBe(404);
    expect((await fetch(`${url}/v2/m/accept/manifests/idx`, { headers: { Accept: `${OCI_MANIFEST};q=0.9, */*;q=0.1` } })).status).toBe(200);
    expect((await fetch(`${url}/v2/m/accept/manifests/idx`)).status).toBe(200);
    const img = await fetch(`${url}/v2/m/accept/manifests/img`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
    expect(img.headers.get('content-type')).toBe(OCI_MANIFEST);
  });

  it('serves the exact bytes received, whitespace and key order included', async () => {
    const image = await pushImage(url, 'm/bytes', 'b');
    const text = `{\n  "schemaVersion": 2,\n   "mediaType": "${OCI_MANIFEST}", "layers": ${JSON.stringify(image.layers)},\n "config": ${JSON.stringify(image.config)}\n}\n`;
    const r = await putManifest(url, 'm/bytes', 'v1', text, OCI_MANIFEST);
    expect(r.res.headers.get('docker-content-digest')).toBe(sha256(text));
    expect(await (await fetch(`${url}/v2/m/bytes/manifests/${sha256(text)}`)).text()).toBe(text);
  });

  it('refuses invalid tags on PUT (400) and answers 404 for them on GET', async () => {
    const image = await pushImage(url, 'm/tags', 't');
    const r = await putManifest(url, 'm/tags', '.bad', image, OCI_MANIFEST);
    expect(r.res.status).toBe(400);
    expect(r.json?.errors[0]?.code).toBe('MANIFEST_INVALID');
    expect((await fetch(`${url}/v2/m/tags/manifests/${'x'.repeat(129)}`)).status).toBe(404);
  });
});

describe('artifacts and referrers', () => {
  const SIG = 'application/vnd.example.signature';
  const SBOM = 'application/vnd.example.sbom';

  it('accepts a referrer whose subject is missing, and lists referrers with filters', async () => {
    const subject = await putManifest(url, 'r/app', 'v1', await pushImage(url, 'r/app', 'subject'), OCI_MANIFEST);
    const emptyConfig = Buffer.from('{}');
    await pushBlob(url, 'r/app', emptyConfig);
    const artifact = (artifactType: string, subjectDigest: string, size: number) => ({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(emptyConfig), size: 2 },
      layers: [],
      subject: { mediaType: OCI_MANIFEST, digest: subjectDigest, size },
      annotations: { 'org.example.kind': artifactType },
    });
    const sig = await putManifest(url, 'r/app', sha256(JSON.stringify(artifact(SIG, subject.digest, subject.bytes.length))), artifact(SIG, subject.digest, subject.bytes.length), OCI_MANIFEST);
    expect(sig.res.status).toBe(201);
    expect(sig.res.headers.get('oci-subject')).toBe(subject.digest);
    const sbom = await putManifest(url, 'r/app', 'sbom', artifact(SBOM, subject.digest, subject.bytes.length), OCI_MANIFEST);
    expect(sbom.res.status).toBe(201);

    const all = await fetch(`${url}/v2/r/app/referrers/${subject.digest}`);
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe(OCI_INDEX);
    expect(all.headers.get('oci-filters-applied')).toBeNull();
    const body = (await all.json()) as { mediaType: string; manifests: Array<{ digest: string; artifactType: string; annotations: Record<string, string> }> };
    expect(body.mediaType).toBe(OCI_INDEX);
    expect(body.manifests.map((m) => m.digest).sort()).toEqual([sig.digest, sbom.digest].sort());
    expect(body.manifests.find((m) => m.digest === sbom.digest)?.annotations['org.example.kind']).toBe(SBOM);

    const filtered = await fetch(`${url}/v2/r/app/referrers/${subject.digest}?artifactType=${encodeURIComponent(SIG)}`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await filtered.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([sig.digest]);

    // A referrer of a subject that was never pushed is allowed (OCI 1.1).
    const orphan = await putManifest(url, 'r/app', 'orphan', artifact(SIG, sha256('not pushed'), 10), OCI_MANIFEST);
    expect(orphan.res.status).toBe(201);
    expect(orphan.res.headers.get('oci-subject')).toBe(sha256('not pushed'));

    // Deleting a referrer removes it from the list. It is the current point of its tag: the tag
    // goes first (docs/immutability.md), then the manifest.
    expect((await fetch(`${url}/v2/r/app/manifests/${sbom.digest}`, { method: 'DELETE' })).status).toBe(403);
    expect((await fetch(`${url}/v2/r/app/manifests/sbom`, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(`${url}/v2/r/app/manifests/${sbom.digest}`, { method: 'DELETE' })).status).toBe(202);
    const after = (await (await fetch(`${url}/v2/r/app/referrers/${subject.digest}`)).json()) as { manifests: unknown[] };
    expect(after.manifests).toHaveLength(1);
  });

  it('answers an empty index for a subject without referrers, and 400 for a bad digest', async () => {
    const r = await fetch(`${url}/v2/r/none/referrers/${sha256('nothing')}`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    const bad = await fetch(`${url}/v2/r/none/referrers/sha256:1234`);
    expect(bad.status).toBe(400);
    expect(errorCode(await bad.text())).toBe('DIGEST_INVALID');
  });
});

describe('listings', () => {
  it('lists tags sorted and pages through them with n, last and Link', async () => {
    const image = await pushImage(url, 'l/tags', 'x');
    for (const tag of ['v10', 'b', 'a', 'v2', 'C']) expect((await putManifest(url, 'l/tags', tag, image, OCI_MANIFEST)).res.status).toBe(201);
    const all = (await (await fetch(`${url}/v2/l/tags/tags/list`)).json()) as { name: string; tags: string[] };
    expect(all).toEqual({ name: 'l/tags', tags: ['C', 'a', 'b', 'v10', 'v2'] });
    const seen: string[] = [];
    let next: string | null = '/v2/l/tags/tags/list?n=2';
    while (next) {
      const page = await fetch(`${url}${next}`);
      seen.push(...((await page.json()) as { tags: string[] }).tags);
      next = /<([^>]+)>; rel="next"/.exec(page.headers.get('link') ?? '')?.[1] ?? null;
    }
    expect(seen).toEqual(all.tags);
    expect(((await (await fetch(`${url}/v2/l/tags/tags/list?n=0`)).json()) as { tags: string[] }).tags).toEqual([]);
  });

  it('pages through the catalog', async () => {
    for (const repo of ['l/cat-1', 'l/cat-2', 'l/cat-3']) await pushBlob(url, repo, Buffer.from(repo));
    const first = await fetch(`${url}/v2/_catalog?n=2&last=l/cat-0`);
    expect(((await first.json()) as { repositories: string[] }).repositories).toEqual(['l/cat-1', 'l/cat-2']);
    expect(first.headers.get('link')).toBe('</v2/_catalog?n=2&last=l%2Fcat-2>; rel="next"');
  });
});

describe('deletes disabled', () => {
  let locked: TestRegistry;
  beforeAll(async () => {
    locked = await startTestRegistry({ env: { DRREG_API_DELETES: 'false' } });
  });
  afterAll(() => locked?.stop());

  it('answers 405 UNSUPPORTED and keeps the content', async () => {
    const digest = await pushBlob(locked.url, 'd/app', Buffer.from('keep'));
    const r = await fetch(`${locked.url}/v2/d/app/blobs/${digest}`, { method: 'DELETE' });
    expect(r.status).toBe(405);
    expect(errorCode(await r.text())).toBe('UNSUPPORTED');
    expect((await fetch(`${locked.url}/v2/d/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
  });
});

describe('abandoned uploads', () => {
  let janitor: TestRegistry;
  beforeAll(async () => {
    janitor = await startTestRegistry({ env: { DRREG_UPLOADS_MAXAGE: '1s', DRREG_UPLOADS_CLEANUPINTERVAL: '1s' } });
  });
  afterAll(() => janitor?.stop());

  it('expire with their parts', async () => {
    const start = await fetch(`${janitor.url}/v2/j/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    expect((await fetch(`${janitor.url}${location}`, { method: 'PATCH', body: randomBytes(1000) })).status).toBe(202);
    const keys = async (prefix: string) => {
      const out: string[] = [];
      for await (const o of janitor.store.list(prefix)) out.push(o.key);
      return out;
    };
    expect(await keys('data/')).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 3500));
    expect(await keys('data/')).toEqual([]);
    expect(await keys('uploads/')).toEqual([]);
    expect((await fetch(`${janitor.url}${location}`)).status).toBe(404);
  });
});
