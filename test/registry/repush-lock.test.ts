// A re-push of the digest a tag already points at is what a daily backup of an unchanged system
// sends. The data it confirms must be locked like any push (docs/immutability.md): before the fix
// the tag kept its old point, whose lock had run out, so a client with push and delete rights
// moved the tag away and deleted the manifest by digest right after the re-push.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, pushImage, putManifest } from '../http/client.js';

let registry: TestRegistry;
const ADMIN_TOKEN = 'repush-lock-admin-token-0123456789';
const repo = 'dr/unchanged';

beforeAll(async () => {
  registry = await startTestRegistry({ env: { DRREG_RETENTION_LOCK: '2s', DRREG_GC_GRACE: '0', DRREG_ADMIN_TOKEN: ADMIN_TOKEN } });
});
afterAll(async () => registry?.stop());

it('a re-push after the old point unlocked is locked again: move the tag, delete by digest: DENIED', async () => {
  const a = await putManifest(registry.url, repo, 'latest', await pushImage(registry.url, repo, 'a'), OCI_MANIFEST);
  expect(a.res.status).toBe(201);
  // Wait (on the lock itself) until the first point is no longer locked.
  const lockedUntil = async () => {
    const res = await fetch(`${registry.url}/admin/v1/recovery-points?repository=${repo}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    const { points } = (await res.json()) as { points: Array<{ digest: string; lockedUntil?: string }> };
    return points.filter((p) => p.digest === a.digest && p.lockedUntil).length;
  };
  expect(await lockedUntil()).toBe(1);
  const deadline = Date.now() + 10_000;
  while ((await lockedUntil()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50)); // polling the condition
  expect(await lockedUntil()).toBe(0);

  // Today's backup: the same image again.
  const again = await putManifest(registry.url, repo, 'latest', await pushImage(registry.url, repo, 'a'), OCI_MANIFEST);
  expect(again.res.status).toBe(201);
  expect(again.digest).toBe(a.digest);

  // The attacker: push something else over the tag, then delete the manifest just re-pushed.
  const b = await putManifest(registry.url, repo, 'latest', await pushImage(registry.url, repo, 'b'), OCI_MANIFEST);
  expect(b.res.status).toBe(201);
  const del = await fetch(`${registry.url}/v2/${repo}/manifests/${a.digest}`, { method: 'DELETE' });
  const text = await del.text();
  expect(del.status, text).toBe(403);
  expect(JSON.parse(text).errors[0].code).toBe('DENIED');
  const pull = await fetch(`${registry.url}/v2/${repo}/manifests/${a.digest}`, { headers: { Accept: OCI_MANIFEST } });
  expect(pull.status).toBe(200);
});

it('a re-push while the point has most of its lock left keeps that point (no new history entry)', async () => {
  const other = await startTestRegistry({ env: { DRREG_RETENTION_LOCK: '1d', DRREG_ADMIN_TOKEN: ADMIN_TOKEN } });
  try {
    const name = 'dr/steady';
    const image = await pushImage(other.url, name, 'steady');
    const first = await putManifest(other.url, name, 'latest', image, OCI_MANIFEST);
    const second = await putManifest(other.url, name, 'latest', image, OCI_MANIFEST);
    expect([first.res.status, second.res.status]).toEqual([201, 201]);
    const res = await fetch(`${other.url}/admin/v1/recovery-points?repository=${name}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    const { points } = (await res.json()) as { points: Array<{ digest: string; lockedUntil?: string }> };
    expect(points).toHaveLength(1);
    expect(points[0]!.lockedUntil).toBeDefined();
  } finally {
    await other.stop();
  }
});
