// A registry as a DR site sees it after a week: three systems pushing real images (built by
// test/e2e/images.ts, pushed through the registry's HTTP API with tokens from its token
// endpoint), a shared base layer (dedup), a multi-arch index, volume snapshots, pruned points still restorable, a pinned point, an encrypted store and admin users.
//
// A week cannot pass in a test: older pushes go in by digest over HTTP, and their tag moves are
// recorded with the registry's own Tags.set at the time they would have happened (what a push by
// tag does, with another clock). The newest point of each system is pushed by tag, now.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { saveKeyring } from '../../src/crypto/keyring.js';
import { hashPassword } from '../../src/crypto/passwords.js';
import { buildImage, buildIndex, sha256, type Image } from '../e2e/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const KiB = 1024;

export const ADMIN = { user: 'ops', password: `ops-${randomBytes(8).toString('hex')}` };
export const ADMIN_TOKEN = `console-token-${randomBytes(12).toString('hex')}`;
/** The artifact type of volume snapshots (src/volumes). */
export const VOLUME_TYPE = 'application/vnd.dr-registry.volume.v1';

export interface PushedPoint {
  repo: string;
  tag: string;
  digest: string;
  at: number;
}

export interface ConsoleFixture {
  registry: TestRegistry;
  origin: string;
  points: PushedPoint[];
  /** GET or POST on the admin API with the admin token. */
  admin<T = unknown>(path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

export async function startConsoleFixture(): Promise<ConsoleFixture> {
  const work = await mkdtemp(path.join(tmpdir(), 'drreg-console-'));
  const keyring = path.join(work, 'keyring.yml');
  await saveKeyring(keyring, {
    active: 'k2611-b',
    keys: new Map([
      ['k2611-a', randomBytes(32)],
      ['k2611-b', randomBytes(32)],
    ]),
  });
  const registry = await startTestRegistry({
    env: {
      DRREG_ENCRYPTION_KEYRING: keyring,
      DRREG_ADMIN_TOKEN: ADMIN_TOKEN,
      // The last day and a half of points cannot be deleted, pruned or unpinned (docs/immutability.md).
      DRREG_RETENTION_LOCK: '36h',
      DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
      DRREG_AUTH_USERS: JSON.stringify([{ name: ADMIN.user, password: await hashPassword(ADMIN.password, { logN: 12, r: 8, p: 1 }) }]),
      DRREG_AUTH_ACCESS: JSON.stringify([
        { repositories: '*', users: [ADMIN.user], actions: ['pull', 'push', 'delete'] },
        { repositories: '*', users: ['anonymous'], actions: ['pull'] },
      ]),
      DRREG_AUTH_ADMINS: JSON.stringify([ADMIN.user]),
    },
  });
  const origin = registry.url;
  const tokens = new Map<string, string>();
  const basic = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;

  const token = async (repo: string) => {
    let t = tokens.get(repo);
    if (!t) {
      const res = await fetch(`${origin}/auth/token?service=dr-registry&scope=repository:${repo}:pull,push`, { headers: { Authorization: basic } });
      if (!res.ok) throw new Error(`token for ${repo}: ${res.status}`);
      t = ((await res.json()) as { token: string }).token;
      tokens.set(repo, t);
    }
    return `Bearer ${t}`;
  };
  const pushed = new Set<string>();
  const pushBlob = async (repo: string, bytes: Buffer) => {
    const id = `${repo}@${sha256(bytes)}`;
    if (pushed.has(id)) return; // already there: a client's HEAD would skip it too
    pushed.add(id);
    const res = await fetch(`${origin}/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes, headers: { Authorization: await token(repo) } });
    if (res.status !== 201) throw new Error(`push blob to ${repo}: ${res.status} ${await res.text()}`);
  };
  const putManifest = async (repo: string, ref: string, bytes: Buffer, mediaType: string) => {
    const res = await fetch(`${origin}/v2/${repo}/manifests/${ref}`, {
      method: 'PUT',
      body: bytes,
      headers: { Authorization: await token(repo), 'Content-Type': mediaType },
    });
    if (res.status !== 201) throw new Error(`put manifest ${repo}:${ref}: ${res.status} ${await res.text()}`);
    return sha256(bytes);
  };
  const pushImage = async (repo: string, image: Image, ref: string) => {
    for (const blob of [image.config, ...image.layers]) await pushBlob(repo, blob.bytes);
    return putManifest(repo, ref, image.manifest.bytes, 'application/vnd.oci.image.manifest.v1+json');
  };

  const points: PushedPoint[] = [];
  const now = Date.now();
  /** A point pushed in the past: content over HTTP by digest, the tag move at its time. */
  const pastPoint = async (repo: string, tag: string, digest: string, at: number) => {
    await registry.registry.tags.set(repo, tag, digest, new Date(at));
    points.push({ repo, tag, digest, at });
  };
  const base = { seed: 'console-os-base', size: 256 * KiB };

  // erp/db: nightly backups for a week, the last one tonight.
  for (let day = 6; day >= 0; day--) {
    const image = buildImage([base, { seed: `console-erp-db-${day}`, size: 128 * KiB }], { configMarker: `erp-${day}` });
    if (day > 0) {
      const digest = await pushImage('erp/db', image, image.manifest.digest);
      await pastPoint('erp/db', 'nightly', digest, now - day * DAY - 2 * HOUR);
    } else {
      const digest = await pushImage('erp/db', image, 'nightly');
      points.push({ repo: 'erp/db', tag: 'nightly', digest, at: Date.now() });
    }
  }
  // erp/db's database volume, snapshotted with it: an artifact of its own tag whose layers are the
  // volume's chunks (the shape of a volume snapshot; the console only reads its artifactType).
  const shared = randomBytes(96 * KiB); // unchanged chunks are shared between snapshots
  for (let day = 2; day >= 0; day--) {
    const chunks = [shared, randomBytes(48 * KiB)];
    const tree = Buffer.from(JSON.stringify({ volume: 'pgdata', day }));
    for (const c of [tree, ...chunks]) await pushBlob('erp/db', c);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: VOLUME_TYPE,
        config: { mediaType: 'application/vnd.example.volume.tree.v1+json', digest: sha256(tree), size: tree.length },
        layers: chunks.map((c) => ({ mediaType: 'application/vnd.example.volume.chunk.v1', digest: sha256(c), size: c.length })),
        annotations: { 'org.opencontainers.image.title': 'pgdata' },
      }),
    );
    if (day > 0) {
      await putManifest('erp/db', sha256(manifest), manifest, 'application/vnd.oci.image.manifest.v1+json');
      await pastPoint('erp/db', 'pgdata', sha256(manifest), now - day * DAY - 2 * HOUR + 5 * 60_000);
    } else {
      points.push({ repo: 'erp/db', tag: 'pgdata', digest: await putManifest('erp/db', 'pgdata', manifest, 'application/vnd.oci.image.manifest.v1+json'), at: Date.now() });
    }
  }

  // shop/web: a release as a multi-arch index three days ago; `latest` twice a day since.
  const amd = buildImage([base, { seed: 'console-shop-1.4-amd64', size: 128 * KiB }], { architecture: 'amd64' });
  const arm = buildImage([{ seed: 'console-os-base-arm64', size: 240 * KiB }, { seed: 'console-shop-1.4-arm64', size: 128 * KiB }], { architecture: 'arm64' });
  await pushImage('shop/web', amd, amd.manifest.digest);
  await pushImage('shop/web', arm, arm.manifest.digest);
  const index = buildIndex([
    { image: amd, architecture: 'amd64' },
    { image: arm, architecture: 'arm64' },
  ]);
  await putManifest('shop/web', index.digest, index.bytes, 'application/vnd.oci.image.index.v1+json');
  await pastPoint('shop/web', 'v1.4', index.digest, now - 3 * DAY - 5 * HOUR);
  for (let half = 4; half >= 0; half--) {
    const image = buildImage([base, { seed: `console-shop-latest-${half}`, size: 64 * KiB }]);
    if (half > 0) await pastPoint('shop/web', 'latest', await pushImage('shop/web', image, image.manifest.digest), now - half * 12 * HOUR - HOUR);
    else points.push({ repo: 'shop/web', tag: 'latest', digest: await pushImage('shop/web', image, 'latest'), at: Date.now() });
  }

  // legacy/crm: stopped pushing eight days ago; a policy keeping only its last point pruned the rest.
  for (let day = 10; day >= 8; day--) {
    const image = buildImage([{ seed: `console-crm-${day}`, size: 192 * KiB }]);
    await pastPoint('legacy/crm', 'latest', await pushImage('legacy/crm', image, image.manifest.digest), now - day * DAY);
  }

  const admin = async <T>(p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${origin}/admin/v1${p}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`admin ${p}: ${res.status} ${await res.text()}`);
    return (res.status === 204 ? undefined : await res.json()) as T;
  };
  const putPolicies = async (policies: unknown[]) => {
    const res = await fetch(`${origin}/admin/v1/retention/policies`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ policies }),
    });
    if (!res.ok) throw new Error(`put policies: ${res.status} ${await res.text()}`);
  };
  await putPolicies([{ repositories: 'legacy/*', keepLast: 1 }]);
  await admin('/prune', { dryRun: false });
  await putPolicies([
    { repositories: 'legacy/*', keepLast: 1 },
    { repositories: 'erp/*', keepLast: 4 },
    { repositories: '*', keepWithin: '30d', keepTags: ['v*'] },
  ]);
  // Kept whatever the policy: the point before a risky upgrade.
  const beforeUpgrade = points.find((p) => p.repo === 'erp/db' && Math.round((now - p.at) / DAY) === 5)!;
  await admin('/recovery-points/pin', { repository: 'erp/db', digest: beforeUpgrade.digest });

  return {
    registry,
    origin,
    points,
    admin,
    async stop() {
      await registry.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}
