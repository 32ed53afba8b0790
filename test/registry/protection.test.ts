// Immutable recovery points (docs/immutability.md): a client with every right, the admin token and
// a changed policy all try to destroy a locked point, and every attempt is refused with a clear
// DENIED while the point still pulls bit for bit. Pins and current points resist a distribution
// DELETE without a lock too (issue 10, item 6). The lock's rules themselves are pure (LockState).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { LockState, type LockEntry } from '../../src/registry/protection.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { storeFactories } from '../helpers/stores.js';
import { OCI_INDEX, OCI_MANIFEST, pushImage, putManifest, sha256 } from '../http/client.js';

const DAY = 86_400_000;
const entry = (lockMs: number, setAtMs: number): LockEntry => ({ lockMs, setAtMs, source: 'api' });

describe('lock rules (pure)', () => {
  const t0 = Date.UTC(2026, 0, 1);

  it('a point is locked for the lock in force when it was pushed', () => {
    const s = new LockState([entry(14 * DAY, t0)], t0 + DAY);
    expect(s.lockedUntil(t0 + DAY)).toBe(t0 + 15 * DAY);
    expect(s.isLocked(t0 - 12 * DAY)).toBe(true);
    expect(s.isLocked(t0 - 13 * DAY)).toBe(false);
  });

  it('raising applies at once, to points already stored too', () => {
    const s = new LockState([entry(DAY, t0 - 10 * DAY), entry(30 * DAY, t0)], t0);
    expect(s.effectiveMs()).toBe(30 * DAY);
    expect(s.isLocked(t0 - 5 * DAY)).toBe(true); // unlocked under 1d, locked again by the raise
  });

  it('lowering applies only once the old lock has run out, and only to points pushed after that', () => {
    const lowered = [entry(14 * DAY, t0 - 30 * DAY), entry(DAY, t0)];
    const now = new LockState(lowered, t0);
    expect(now.effectiveMs()).toBe(14 * DAY);
    expect(now.configuredMs()).toBe(DAY);
    expect(now.settledAtMs()).toBe(t0 + 14 * DAY);
    expect(now.isLocked(t0 - 10 * DAY)).toBe(true);
    // A stolen admin token that lowers the lock and waits: what was pushed before keeps 14 days.
    const later = new LockState(lowered, t0 + 14 * DAY);
    expect(later.lockedUntil(t0 + 13 * DAY)).toBe(t0 + 27 * DAY);
    expect(later.lockedUntil(t0 + 15 * DAY)).toBe(t0 + 16 * DAY);
  });

  it('lowering to zero twice in a row gains nothing', () => {
    const s = new LockState([entry(14 * DAY, t0 - DAY), entry(0, t0), entry(0, t0 + DAY)], t0 + DAY);
    expect(s.effectiveMs()).toBe(14 * DAY);
    expect(s.isLocked(t0)).toBe(true);
  });
});

const ADMIN_TOKEN = 'immutability-admin-token-0123456789';
const ROOT_PASSWORD = 'root-' + randomBytes(6).toString('hex');

describe('a locked recovery point resists every destructive path', () => {
  let root: string;
  let registry: TestRegistry;
  let env: Record<string, string>;
  const repo = 'dr/app';
  const points: Array<{ digest: string; bytes: Buffer; blobs: Map<string, Buffer> }> = [];

  async function start(lock: string) {
    registry = await startTestRegistry({ root, env: { ...env, DRREG_RETENTION_LOCK: lock } });
  }

  /** A token of the user with every right, as `docker login` would get it. */
  async function rootToken(actions = 'pull,push,delete'): Promise<string> {
    const res = await fetch(`${registry.url}/auth/token?service=dr-registry&scope=repository:${repo}:${actions}`, {
      headers: { Authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}` },
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  }

  async function v2(method: string, ref: string, body?: Buffer) {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, {
      method,
      body,
      headers: { Authorization: `Bearer ${await rootToken()}`, 'Content-Type': OCI_MANIFEST, Accept: OCI_MANIFEST },
    });
    const text = await res.text();
    return { status: res.status, text, json: text ? (JSON.parse(text) as { errors?: Array<{ code: string; message: string }> }) : undefined };
  }

  async function admin(method: string, route: string, body?: unknown) {
    const res = await fetch(`${registry.url}/admin/v1${route}`, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown> & { errors?: Array<{ code: string; message: string }> }) : undefined };
  }

  /** Pulls the point's manifest and every blob it names, and compares them byte for byte. */
  async function expectPullsBitForBit(point: (typeof points)[number]) {
    const token = await rootToken('pull');
    const m = await fetch(`${registry.url}/v2/${repo}/manifests/${point.digest}`, { headers: { Authorization: `Bearer ${token}`, Accept: OCI_MANIFEST } });
    expect(m.status).toBe(200);
    expect(Buffer.from(await m.arrayBuffer()).equals(point.bytes)).toBe(true);
    for (const [digest, bytes] of point.blobs) {
      const b = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { headers: { Authorization: `Bearer ${token}` } });
      expect(b.status).toBe(200);
      expect(Buffer.from(await b.arrayBuffer()).equals(bytes)).toBe(true);
    }
  }

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'drreg-immut-'));
    env = {
      DRREG_ADMIN_TOKEN: ADMIN_TOKEN,
      DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
      DRREG_AUTH_USERS: JSON.stringify([{ name: 'root', password: await hashPassword(ROOT_PASSWORD, { logN: 12, r: 8, p: 1 }) }]),
      DRREG_AUTH_ACCESS: JSON.stringify([{ repositories: '*', users: ['root'], actions: ['pull', 'push', 'delete'] }]),
      DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: '*', keepLast: 1 }]),
      DRREG_RETENTION_GRACE: '0',
      DRREG_GC_GRACE: '0',
      DRREG_GC_SWEEPDELAY: '10ms',
    };
    await start('14d');
    // Three daily pushes of `latest` by the user with every right: each tag push over the last
    // (an overwrite) leaves the old point a point.
    for (const day of ['mon', 'tue', 'wed']) {
      // Blobs through the registry object's own HTTP (the token covers push).
      const token = await rootToken();
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', day }));
      const layer = randomBytes(4096);
      for (const blob of [config, layer]) {
        const r = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { Authorization: `Bearer ${token}` } });
        expect(r.status).toBe(201);
      }
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
        }),
      );
      expect((await v2('PUT', 'latest', manifest)).status).toBe(201);
      points.push({ digest: sha256(manifest), bytes: manifest, blobs: new Map([[sha256(config), config], [sha256(layer), layer]]) });
    }
    expect((await admin('POST', '/recovery-points/pin', { repository: repo, digest: points[0]!.digest })).status).toBe(204);
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('lists every point with when its lock ends', async () => {
    const listed = (await admin('GET', `/recovery-points?repository=${repo}`)).body!.points as Array<{ digest: string; lockedUntil?: string; current: boolean }>;
    expect(listed.map((p) => p.digest)).toEqual(points.map((p) => p.digest));
    for (const p of listed) expect(Date.parse(p.lockedUntil!)).toBeGreaterThan(Date.now() + 13 * DAY);
  });

  it('the client with every right: DELETE by digest and by tag are refused with DENIED', async () => {
    for (const p of points) {
      const res = await v2('DELETE', p.digest);
      expect(res.status).toBe(403);
      expect(res.json!.errors![0]).toMatchObject({ code: 'DENIED', message: expect.stringMatching(/locked until .* \(retention\.lock\)/) });
    }
    // Nor the repository's link to one of their blobs (the point would no longer pull).
    const [layer] = [...points[0]!.blobs.keys()];
    const unlink = await fetch(`${registry.url}/v2/${repo}/blobs/${layer}`, { method: 'DELETE', headers: { Authorization: `Bearer ${await rootToken()}` } });
    expect(unlink.status).toBe(403);
    expect(((await unlink.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]).toMatchObject({
      code: 'DENIED',
      message: expect.stringMatching(/blob is part of recovery point .* cannot be deleted/),
    });
    const byTag = await v2('DELETE', 'latest');
    expect(byTag.status).toBe(403);
    expect(byTag.json!.errors![0]!.message).toMatch(/tag latest points at a recovery point locked until/);
  });

  it('a signature of a locked point cannot be deleted either (a recovery site that checks signatures could not run it)', async () => {
    // A cosign-style signature: an artifact manifest whose subject is the point, pushed by the user
    // with every right (the kind of credential ransomware steals).
    const token = await rootToken();
    const empty = Buffer.from('{}');
    const signature = Buffer.from('signature of wed');
    for (const blob of [empty, signature]) {
      const r = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { Authorization: `Bearer ${token}` } });
      expect(r.status).toBe(201);
    }
    const subject = points[2]!;
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: empty.length },
        layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha256(signature), size: signature.length }],
        subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.bytes.length },
      }),
    );
    expect((await v2('PUT', sha256(referrer), referrer)).status).toBe(201);

    const res = await v2('DELETE', sha256(referrer));
    expect(res.status).toBe(403);
    expect(res.json!.errors![0]).toMatchObject({ code: 'DENIED', message: expect.stringMatching(/refers to recovery point sha256:\w+, which is locked until .* \(retention\.lock\)/) });
    const listed = await fetch(`${registry.url}/v2/${repo}/referrers/${subject.digest}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(((await listed.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toContain(sha256(referrer));
  });

  it('the admin token: unpin is refused, lowering the lock only takes effect after the lock in force', async () => {
    const unpin = await admin('POST', '/recovery-points/unpin', { repository: repo, digest: points[0]!.digest });
    expect(unpin.status).toBe(403);
    expect(unpin.body!.errors![0]).toMatchObject({ code: 'DENIED', message: expect.stringMatching(/locked until .* cannot be unpinned/) });

    const lowered = await admin('PUT', '/lock', { lock: '0' });
    expect(lowered.status).toBe(200);
    expect(lowered.body).toMatchObject({ effective: '14d', configured: '0' });
    expect(Date.parse(lowered.body!.configuredFrom as string)).toBeGreaterThan(Date.now() + 13 * DAY);
    expect((await v2('DELETE', points[1]!.digest)).status).toBe(403);
  });

  it('a changed policy and prune: the locked points are kept, with the reason', async () => {
    expect((await admin('PUT', '/retention/policies', { policies: [{ repositories: '*', keepLast: 1 }] })).status).toBe(200);
    const pruned = await admin('POST', '/prune', { dryRun: false });
    expect(pruned.status).toBe(200);
    expect(pruned.body!.droppedPoints).toBe(0);
    const decisions = (pruned.body!.repositories as Array<{ points: Array<{ digest: string; keep: boolean; reasons: string[] }> }>)[0]!.points;
    expect(decisions.find((d) => d.digest === points[1]!.digest)).toMatchObject({ keep: true, reasons: ['locked'] });
    expect((await registry.registry.recoveryPoints.list(repo)).map((p) => p.digest)).toEqual(points.map((p) => p.digest));
  });

  it('a restart with a lower retention.lock cannot shorten it', async () => {
    await registry.stop();
    await start('0');
    expect((await v2('DELETE', points[1]!.digest)).status).toBe(403);
    expect((await admin('GET', '/lock')).body).toMatchObject({ effective: '14d', configured: '0' });
  });

  it('the collector with zero graces keeps every byte of the locked points (two of them no longer current)', async () => {
    const report = await registry.maintenance.runGc({ dryRun: false });
    expect(report.blobsSwept).toBe(0);
    for (const p of points) await expectPullsBitForBit(p);
  });
});

describe('pins and current points without a lock (issue 10, item 6)', () => {
  let registry: TestRegistry;
  const repo = 'dr/pins';
  const digests: string[] = [];

  beforeAll(async () => {
    registry = await startTestRegistry({ env: { DRREG_RETENTION_LOCK: '0', DRREG_ADMIN_TOKEN: ADMIN_TOKEN } });
    for (const day of ['a', 'b', 'c']) {
      const pushed = await putManifest(registry.url, repo, 'latest', await pushImage(registry.url, repo, day), OCI_MANIFEST);
      digests.push(pushed.digest);
    }
    await registry.registry.recoveryPoints.pin(repo, digests[0]!);
  });
  afterAll(() => registry?.stop());

  const del = async (ref: string) => {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, { method: 'DELETE' });
    const text = await res.text();
    return { status: res.status, error: text ? (JSON.parse(text) as { errors: Array<{ code: string; message: string }> }).errors[0] : undefined };
  };

  it('a pinned point cannot be deleted by digest', async () => {
    const res = await del(digests[0]!);
    expect(res.status).toBe(403);
    expect(res.error).toMatchObject({ code: 'DENIED', message: expect.stringMatching(/pinned: unpin it first/) });
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/${digests[0]}`)).status).toBe(200);
  });

  it('the current point cannot be deleted by digest while the tag points at it; deleting the tag first works', async () => {
    const res = await del(digests[2]!);
    expect(res.status).toBe(403);
    expect(res.error!.message).toMatch(/current point of tag\(s\) latest: delete the tag first/);
    expect((await del('latest')).status).toBe(202);
    // The point stays a restorable point; now it may go by digest.
    expect((await registry.registry.recoveryPoints.list(repo)).map((p) => p.digest)).toContain(digests[2]);
    expect((await del(digests[2]!)).status).toBe(202);
  });

  it('a platform manifest of a current multi-platform point cannot be deleted by digest, nor its layers', async () => {
    const child = await putManifest(registry.url, repo, 'x', await pushImage(registry.url, repo, 'arm64'), OCI_MANIFEST);
    const childDigest = child.digest;
    // Pushed by digest in practice (docker buildx, skopeo): untag the helper tag.
    expect((await del('x')).status).toBe(202);
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: childDigest, size: child.bytes.length, platform: { architecture: 'arm64', os: 'linux' } }] };
    expect((await putManifest(registry.url, repo, 'multi', index, OCI_INDEX)).res.status).toBe(201);
    const res = await del(childDigest);
    expect(res.status).toBe(403);
    expect(res.error!.message).toMatch(/manifest is part of recovery point sha256:[0-9a-f]+, which is current, pinned or locked/);
    const layer = (JSON.parse(child.bytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    expect((await fetch(`${registry.url}/v2/${repo}/blobs/${layer}`, { method: 'DELETE' })).status).toBe(403);
  });

  it('a deleted point is not listed: every listed point can be restored', async () => {
    expect((await del(digests[1]!)).status).toBe(202);
    const listed = (await registry.registry.recoveryPoints.list(repo)).filter((p) => p.tag === 'latest');
    expect(listed.map((p) => p.digest)).toEqual([digests[0]]);
    for (const p of listed) await registry.registry.recoveryPoints.restore(repo, 'restored', p.digest);
  });
});

describe.each(storeFactories())('a lock raised after a prune keeps the pruned point whole, on $name', (factory) => {
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;
  const repo = 'dr/raised';

  beforeAll(async () => {
    const made = await factory.make();
    cleanup = made.cleanup;
    registry = await startTestRegistry({
      store: made.store,
      env: {
        DRREG_RETENTION_LOCK: '0',
        DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: '*', keepLast: 1 }]),
        DRREG_RETENTION_GRACE: '0',
        DRREG_GC_GRACE: '0',
        DRREG_GC_SWEEPDELAY: '10ms',
      },
    });
  });
  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  it('the collector with zero graces treats the locked pruned point as a root; it can be restored', async () => {
    const old = await pushImage(registry.url, repo, 'old');
    const first = await putManifest(registry.url, repo, 'latest', old, OCI_MANIFEST);
    await putManifest(registry.url, repo, 'latest', await pushImage(registry.url, repo, 'new'), OCI_MANIFEST);
    expect((await registry.maintenance.prune({ dryRun: false })).droppedPoints).toBe(1);
    await registry.registry.protection.setLock(14 * DAY, 'api');
    const report = await registry.maintenance.runGc({ dryRun: false });
    expect(report.blobsSwept).toBe(0);
    expect((await fetch(`${registry.url}/v2/${repo}/blobs/${old.layers[0]!.digest}`)).status).toBe(200);
    await registry.registry.recoveryPoints.restore(repo, 'latest', first.digest);
    const pulled = await fetch(`${registry.url}/v2/${repo}/manifests/latest`, { headers: { Accept: OCI_MANIFEST } });
    expect(Buffer.from(await pulled.arrayBuffer()).equals(first.bytes)).toBe(true);
  }, 120_000);
});
