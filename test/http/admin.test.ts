// The admin API against openapi.yaml: every route the server exposes is in the document and the
// reverse, and every response matches the schema the document gives for its status.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { adminRoutes } from '../../src/http/admin/routes.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, pushImage, putManifest } from './client.js';
import { validate } from './schema.js';

type Schema = Record<string, unknown>;
const spec = YAML.parse(readFileSync(path.resolve(import.meta.dirname, '../../openapi.yaml'), 'utf8')) as Schema & {
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, Schema>>;
};
const TOKEN = 'test-admin-token-0123456789';

describe('admin API', () => {
  let registry: TestRegistry;
  let digests: string[];

  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_ADMIN_TOKEN: TOKEN,
        DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: 'dr/*', keepLast: 5, keepWithin: '7d' }]),
        DRREG_RETENTION_GRACE: '0',
        DRREG_GC_GRACE: '0',
        DRREG_GC_SWEEPDELAY: '100ms',
      },
    });
    digests = [];
    for (const day of ['one', 'two']) {
      digests.push((await putManifest(registry.url, 'dr/app', 'latest', await pushImage(registry.url, 'dr/app', day), OCI_MANIFEST)).digest);
    }
  });
  afterAll(() => registry?.stop());

  /** Calls an operation and checks the response against the document's schema for its status. */
  async function call(method: string, route: string, init: { query?: string; body?: unknown; token?: string } = {}) {
    const res = await fetch(`${registry.url}/admin/v1${route}${init.query ? `?${init.query}` : ''}`, {
      method,
      headers: { Authorization: `Bearer ${init.token ?? TOKEN}`, 'Content-Type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const text = await res.text();
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    const documented = spec.paths[route]?.[method.toLowerCase()]?.responses as Record<string, Schema> | undefined;
    expect(documented, `${method} ${route} is documented`).toBeDefined();
    let response = documented![String(res.status)];
    expect(response, `${method} ${route} documents status ${res.status}`).toBeDefined();
    if (typeof response!.$ref === 'string') response = validateRef(response!.$ref);
    const schema = (response!.content as Record<string, { schema: Schema }> | undefined)?.['application/json']?.schema;
    if (schema) expect(validate(body, schema, spec)).toEqual([]);
    else expect(body).toBeUndefined();
    return { status: res.status, body: body as Record<string, unknown> };
  }
  const validateRef = (ref: string) => ref.replace(/^#\//, '').split('/').reduce<unknown>((n, k) => (n as Schema)[k], spec) as Schema;

  it('exposes exactly the routes openapi.yaml describes', () => {
    const base = spec.servers[0]!.url;
    const documented = Object.entries(spec.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${base}${p}`));
    const router = adminRoutes(registry.registry, registry.maintenance);
    const served = router.stack.flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${layer.path}`));
    expect(served.sort()).toEqual(documented.sort());
    const operationIds = Object.values(spec.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(router.stack.map((layer) => layer.name).filter(Boolean).sort()).toEqual(operationIds.sort());
  });

  it('refuses requests without the right token', async () => {
    const r = await call('GET', '/repositories', { token: 'wrong-token-but-long-enough' });
    expect(r.status).toBe(401);
    expect((r.body.errors as Array<{ code: string }>)[0]!.code).toBe('UNAUTHORIZED');
    const none = await fetch(`${registry.url}/admin/v1/storage`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('reports repositories and storage', async () => {
    const repos = await call('GET', '/repositories');
    expect(repos.status).toBe(200);
    expect((repos.body.repositories as Array<{ name: string }>).map((r) => r.name)).toEqual(['dr/app']);
    const storage = await call('GET', '/storage');
    expect(storage.body.logicalBytes).toBeGreaterThan(0);
    expect(storage.body.dedupRatio).toBeGreaterThanOrEqual(1);
  });

  it('lists, pins, unpins and restores recovery points', async () => {
    const listed = await call('GET', '/recovery-points', { query: 'repository=dr/app' });
    expect((listed.body.points as Array<{ digest: string }>).map((p) => p.digest)).toEqual(digests);
    expect((await call('POST', '/recovery-points/pin', { body: { repository: 'dr/app', digest: digests[0] } })).status).toBe(204);
    const pinned = await call('GET', '/recovery-points', { query: 'repository=dr/app' });
    expect((pinned.body.points as Array<{ pinned: boolean }>).map((p) => p.pinned)).toEqual([true, false]);
    expect((await call('POST', '/recovery-points/unpin', { body: { repository: 'dr/app', digest: digests[0] } })).status).toBe(204);
    const restored = await call('POST', '/recovery-points/restore', { body: { repository: 'dr/app', tag: 'latest', digest: digests[0] } });
    expect(restored.body).toEqual({ repository: 'dr/app', tag: 'latest', digest: digests[0] });
    const head = await fetch(`${registry.url}/v2/dr/app/manifests/latest`, { method: 'HEAD' });
    expect(head.headers.get('docker-content-digest')).toBe(digests[0]);
  });

  it('reads, replaces and resets the retention policies', async () => {
    const fromConfig = await call('GET', '/retention/policies');
    expect(fromConfig.body).toEqual({ source: 'config', policies: [{ repositories: 'dr/*', keepLast: 5, keepWithin: '7d' }] });
    const policies = [{ repositories: 'dr/*', keepLast: 1, keepDaily: 7, keepPulledWithin: '36h', keepTags: ['release-*'] }];
    const put = await call('PUT', '/retention/policies', { body: { policies } });
    expect(put.body).toEqual({ source: 'api', policies });
    expect((await call('GET', '/retention/policies')).body).toEqual({ source: 'api', policies });
    const bad = await call('PUT', '/retention/policies', { body: { policies: [{ repositories: 'dr/*', keepLast: -1 }] } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('policies.0.keepLast');
    expect((await call('PUT', '/retention/policies', { body: { policies: [{ repositories: 'x', keepWithin: 'soon' }] } })).status).toBe(400);
    const noRule = await call('PUT', '/retention/policies', { body: { policies: [{ repositories: 'x' }] } });
    expect(JSON.stringify(noRule.body)).toContain('at least one keep rule');
    expect((await call('DELETE', '/retention/policies')).status).toBe(204);
    expect((await call('GET', '/retention/policies')).body.source).toBe('config');
  });

  it('prunes (dry run, then real), lists pruned points, collects, and reports the collection', async () => {
    await call('PUT', '/retention/policies', { body: { policies: [{ repositories: 'gc/*', keepLast: 1 }] } });
    const old = await putManifest(registry.url, 'gc/app', 'latest', await pushImage(registry.url, 'gc/app', 'old'), OCI_MANIFEST);
    const now = await putManifest(registry.url, 'gc/app', 'latest', await pushImage(registry.url, 'gc/app', 'now'), OCI_MANIFEST);
    const dry = await call('POST', '/prune', { body: { dryRun: true } });
    expect(dry.body.droppedPoints).toBe(1);
    expect(dry.body.freedBytes).toBeGreaterThan(0);
    const gcRepo = (dry.body.repositories as Array<{ name: string; points: Array<{ digest: string; keep: boolean; reasons: string[] }> }>).find((r) => r.name === 'gc/app')!;
    expect(gcRepo.points.map((p) => [p.digest, p.keep, p.reasons])).toEqual([
      [old.digest, false, []],
      [now.digest, true, ['last', 'current']],
    ]);
    expect((await call('GET', '/recovery-points', { query: 'repository=gc/app' })).body.pruned).toEqual([]);

    const real = await call('POST', '/prune', { body: { dryRun: false } });
    expect(real.body.freedBytes).toBe(dry.body.freedBytes);
    const listed = await call('GET', '/recovery-points', { query: 'repository=gc/app' });
    expect((listed.body.points as Array<{ digest: string }>).map((p) => p.digest)).toEqual([now.digest]);
    expect((listed.body.pruned as Array<{ digest: string }>).map((p) => p.digest)).toEqual([old.digest]);

    const started = await call('POST', '/gc', { body: {} });
    expect(started.status).toBe(202);
    expect(started.body.running).toBe(true);
    expect((await call('POST', '/gc', { body: {} })).status).toBe(409);
    let status = started.body;
    for (let i = 0; i < 100 && status.running; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await call('GET', '/gc')).body;
    }
    const report = status.lastReport as Record<string, number>;
    expect(status.lastError).toBeUndefined();
    expect(report.manifestsRemoved).toBe(1);
    expect(report.bytesFreed).toBe(dry.body.freedBytes);
    expect((await fetch(`${registry.url}/v2/gc/app/manifests/${old.digest}`, { method: 'HEAD' })).status).toBe(404);
    expect((await fetch(`${registry.url}/v2/gc/app/manifests/latest`, { method: 'HEAD' })).status).toBe(200);
    await call('DELETE', '/retention/policies');
    // No body at all is a real (not dry) run too.
    const bare = await fetch(`${registry.url}/admin/v1/gc`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(bare.status).toBe(202);
    for (let i = 0; i < 100 && ((await call('GET', '/gc')).body.running as boolean); i++) await new Promise((r) => setTimeout(r, 100));
  });

  it('answers bad requests and unknown manifests as documented', async () => {
    expect((await call('POST', '/prune', { body: {} })).status).toBe(400);
    expect((await call('POST', '/gc', { body: { dryRun: 'yes' } })).status).toBe(400);
    expect((await call('GET', '/recovery-points', { query: 'repository=Bad/Name' })).status).toBe(400);
    expect((await call('POST', '/recovery-points/pin', { body: { repository: 'dr/app', digest: 'nope' } })).status).toBe(400);
    expect((await call('POST', '/recovery-points/pin', { body: ['not', 'an', 'object'] })).status).toBe(400);
    const unknown = await call('POST', '/recovery-points/restore', { body: { repository: 'dr/app', tag: 'latest', digest: `sha256:${'0'.repeat(64)}` } });
    expect(unknown.status).toBe(404);
    expect((await call('GET', '/recovery-points', { query: 'repository=no/such' })).status).toBe(404);
    expect((await call('POST', '/verify', { body: { repository: 'no/such' } })).status).toBe(404);
    expect((await call('POST', '/verify', { body: { digest: digests[0] } })).status).toBe(400);
  });

  it('reports systems against their RPO, and verify runs, as documented', async () => {
    const systems = await call('GET', '/systems');
    expect(systems.status).toBe(200);
    expect(systems.body.systems).toContainEqual(expect.objectContaining({ repository: 'dr/app', withinRpo: true, rpoSeconds: 26 * 3600 }));
    const started = await call('POST', '/verify', { body: { repository: 'dr/app' } });
    expect(started.status).toBe(202);
    let status = await call('GET', '/verify');
    for (let i = 0; i < 200 && (status.body.running as boolean); i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = await call('GET', '/verify');
    }
    expect(status.body.lastReport).toMatchObject({ scope: { repository: 'dr/app' }, damaged: [], brokenPoints: [] });
  });
});

describe('admin API without a token configured', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry?.stop());

  it('is off', async () => {
    expect((await fetch(`${registry.url}/admin/v1/repositories`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
  });
});
