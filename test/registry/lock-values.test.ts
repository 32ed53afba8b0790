// PUT /admin/v1/lock with odd values. A lock so large that a push time plus it is past the
// largest Date (about 8.64e15 ms) used to be accepted: then every recovery-point listing of a
// point it covered, and every DENIED naming its end, failed with 500 (RangeError: Invalid time
// value) for good, since the value stays in the lock history. Now the lock is capped.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, pushImage, putManifest } from '../http/client.js';

const ADMIN_TOKEN = 'lock-values-admin-token-0123456789';
let registry: TestRegistry;
beforeAll(async () => {
  registry = await startTestRegistry({ env: { DRREG_ADMIN_TOKEN: ADMIN_TOKEN } });
});
afterAll(async () => registry?.stop());

async function admin(method: string, route: string, body?: string) {
  const res = await fetch(`${registry.url}/admin/v1${route}`, { method, body, headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' } });
  const text = await res.text();
  return { status: res.status, text };
}

it('refuses values that are not a duration, with a clear error and nothing written', async () => {
  for (const body of ['{"lock":"-1d"}', '{"lock":5}', '{"lock":null}', '{"lock":"1e3d"}', '{"lock":["7d"]}', '{}', 'null', '"7d"']) {
    const r = await admin('PUT', '/lock', body);
    expect(r.status, body).toBe(400);
    expect(JSON.parse(r.text).errors[0].code, body).toMatch(/^[A-Z_]+$/);
  }
  const lock = await admin('GET', '/lock');
  expect(JSON.parse(lock.text).history).toEqual([]);
});

it('a lock past what a date can hold is refused, and the API keeps answering', async () => {
  const put = await putManifest(registry.url, 'dr/app', 'latest', await pushImage(registry.url, 'dr/app', 'x'), OCI_MANIFEST);
  expect(put.res.status).toBe(201);
  const huge = await admin('PUT', '/lock', '{"lock":"100000000d"}');
  expect(huge.status, huge.text).toBe(400);
  const ok = await admin('PUT', '/lock', '{"lock":"36500d"}'); // 100 years: the largest accepted
  expect(ok.status, ok.text).toBe(200);
  const points = await admin('GET', '/recovery-points?repository=dr/app');
  expect(points.status, points.text).toBe(200);
  expect(JSON.parse(points.text).points[0].lockedUntil).toBeDefined();
  const del = await fetch(`${registry.url}/v2/dr/app/manifests/latest`, { method: 'DELETE' });
  const text = await del.text();
  expect(del.status, text).toBe(403);
  expect(JSON.parse(text).errors[0].code).toBe('DENIED');
  expect((await admin('GET', '/lock')).status).toBe(200);
});
