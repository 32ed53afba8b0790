// The audit trail (docs/audit.md): every action below leaves one structured record naming who,
// from where, what and when, in the store; the admin API and the CLI list them; verify finds a
// record edited or removed in the store and names it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, listAudit, verifyAudit, type AuditRecord } from '../../src/audit/log.js';
import { hashPassword } from '../../src/crypto/passwords.js';
import { readJson, writeJson } from '../../src/registry/objects.js';
import type { ObjectStore } from '../../src/storage/driver.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { storeFactories } from '../helpers/stores.js';
import { OCI_MANIFEST, sha256 } from '../http/client.js';

const ADMIN_TOKEN = 'audit-admin-token-0123456789';
const PASSWORD = 'ops-' + randomBytes(6).toString('hex');
const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

describe('audit trail', () => {
  let registry: TestRegistry;
  const repo = 'dr/audited';
  const basic = `Basic ${Buffer.from(`ops:${PASSWORD}`).toString('base64')}`;

  async function token(): Promise<string> {
    const res = await fetch(`${registry.url}/auth/token?service=dr-registry&scope=repository:${repo}:pull,push,delete`, {
      headers: { Authorization: basic, 'User-Agent': 'audit-test/1.0' },
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  }

  const admin = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${registry.url}/admin/v1${route}`, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  async function push(tag: string, seed: string): Promise<string> {
    const t = await token();
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
    const layer = Buffer.from(`layer ${seed}`);
    for (const blob of [config, layer]) {
      const r = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { Authorization: `Bearer ${t}` } });
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
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      body: manifest,
      headers: { Authorization: `Bearer ${t}`, 'Content-Type': OCI_MANIFEST, 'User-Agent': 'audit-test/1.0' },
    });
    expect(res.status).toBe(201);
    return sha256(manifest);
  }

  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_ADMIN_TOKEN: ADMIN_TOKEN,
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'ops', password: await hashPassword(PASSWORD, { logN: 12, r: 8, p: 1 }) }]),
        DRREG_AUTH_ACCESS: JSON.stringify([{ repositories: '*', users: ['ops'], actions: ['pull', 'push', 'delete'] }]),
        DRREG_RETENTION_LOCK: '0',
        DRREG_RETENTION_GRACE: '0',
        DRREG_GC_GRACE: '0',
        DRREG_GC_SWEEPDELAY: '10ms',
        DRREG_AUDIT_FLUSHINTERVAL: '50ms',
      },
    });
  });
  afterAll(() => registry?.stop());

  it('records every action with who, from where, what and when; the admin API lists and filters them', async () => {
    const started = new Date();
    const failed = await fetch(`${registry.url}/auth/token?service=dr-registry`, { headers: { Authorization: `Basic ${Buffer.from('ops:wrong').toString('base64')}` } });
    expect(failed.status).toBe(401);
    // A wrong admin credential under another spelling of the admin path is a failed login too.
    const spelled = await fetch(`${registry.url}/ADMIN/v1/repositories`, { headers: { Authorization: 'Bearer not-the-admin-token' } });
    expect(spelled.status).toBe(401);
    const one = await push('latest', 'one');
    const two = await push('latest', 'two');
    await push('old', 'three');
    expect((await admin('POST', '/recovery-points/pin', { repository: repo, digest: one })).status).toBe(204);
    expect((await admin('POST', '/recovery-points/unpin', { repository: repo, digest: one })).status).toBe(204);
    expect((await admin('POST', '/recovery-points/restore', { repository: repo, tag: 'latest', digest: one })).status).toBe(200);
    // Refused: `two` is not current any more but `old` is; delete the tag, then the manifest.
    const t = await token();
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/${one}`, { method: 'DELETE', headers: { Authorization: `Bearer ${t}` } })).status).toBe(403);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/old`, { method: 'DELETE', headers: { Authorization: `Bearer ${t}` } })).status).toBe(202);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/${two}`, { method: 'DELETE', headers: { Authorization: `Bearer ${t}` } })).status).toBe(202);
    expect((await admin('PUT', '/retention/policies', { policies: [{ repositories: '*', keepLast: 5 }] })).status).toBe(200);
    expect((await admin('POST', '/prune', { dryRun: false })).status).toBe(200);
    await registry.maintenance.runGc({ dryRun: false });
    expect((await admin('PUT', '/lock', { lock: '1d' })).status).toBe(200);

    const listed = await admin('GET', `/audit?since=${started.toISOString()}&limit=500`);
    expect(listed.status).toBe(200);
    const records = (listed.body!.records as AuditRecord[]).reverse();
    const actions = records.map((r) => `${r.action}:${r.outcome}`);
    for (const expected of [
      'login:failed',
      'login:ok',
      'tag.push:ok',
      'pin:ok',
      'unpin:ok',
      'restore:ok',
      'request.denied:denied',
      'tag.delete:ok',
      'manifest.delete:ok',
      'policy.change:ok',
      'prune:ok',
      'gc:ok',
      'lock.change:ok',
    ]) {
      expect(actions, expected).toContain(expected);
    }
    const pushRecord = records.find((r) => r.action === 'tag.push' && r.digest === one)!;
    expect(pushRecord).toMatchObject({ repository: repo, tag: 'latest', actor: { kind: 'user', user: 'ops', address: expect.stringMatching(/127\.0\.0\.1/), userAgent: 'audit-test/1.0' } });
    expect(Date.parse(pushRecord.at)).toBeGreaterThanOrEqual(started.getTime());
    expect(records.find((r) => r.action === 'pin')).toMatchObject({ digest: one, repository: repo, actor: { kind: 'admin-token' } });
    expect(records.find((r) => r.action === 'login' && r.outcome === 'failed')).toMatchObject({ actor: { user: 'ops' } });
    expect(records.find((r) => r.action === 'login' && r.outcome === 'failed' && (r.detail as { api?: string })?.api === 'admin')?.detail).toMatchObject({ path: '/ADMIN/v1/repositories' });
    expect(records.find((r) => r.action === 'request.denied')!.detail).toMatchObject({ method: 'DELETE', message: expect.stringMatching(/current point of tag/) });

    const filtered = await admin('GET', `/audit?action=tag.push&actor=ops&repository=${repo}`);
    expect((filtered.body!.records as AuditRecord[]).map((r) => r.digest).sort()).toEqual(records.filter((r) => r.action === 'tag.push').map((r) => r.digest).sort());
    expect((await admin('GET', '/audit?outcome=maybe')).status).toBe(400);
    expect((await admin('GET', '/audit/verify')).body).toMatchObject({ ok: true, problems: [] });
  });

  it('verify names a record edited in the store, and one removed', async () => {
    await registry.audit.flush();
    const keys: string[] = [];
    for await (const obj of registry.store.list('audit/')) keys.push(obj.key);
    const key = keys.sort().find((k) => k.includes(registry.audit.replica))!;
    const segment = (await readJson<{ records: AuditRecord[] }>(registry.store, key))!;
    const original = JSON.parse(JSON.stringify(segment)) as typeof segment;
    const victim = segment.records.find((r) => r.action === 'tag.push' || r.action === 'login')!;
    victim.actor = { ...victim.actor, user: 'someone-else' };
    await writeJson(registry.store, key, segment);

    const edited = await verifyAudit(registry.store, { retentionMs: registry.config.audit.retention });
    expect(edited.ok).toBe(false);
    expect(edited.problems).toContainEqual(expect.objectContaining({ key, seq: victim.seq, action: victim.action, problem: expect.stringMatching(/record edited/) }));

    // Removed rather than edited: the record after it no longer links.
    if (original.records.length >= 2) {
      const removed = { ...original, records: original.records.filter((r) => r.seq !== original.records[0]!.seq) };
      await writeJson(registry.store, key, removed);
      const result = await verifyAudit(registry.store, { retentionMs: registry.config.audit.retention });
      expect(result.problems).toContainEqual(expect.objectContaining({ key, seq: original.records[1]!.seq, problem: expect.stringMatching(/edited or removed/) }));
    }
    await writeJson(registry.store, key, original);
    expect((await verifyAudit(registry.store, { retentionMs: registry.config.audit.retention })).ok).toBe(true);

    // The CLI says the same, from the store alone.
    const env = { PATH: process.env.PATH ?? '', DRREG_STORAGE_FILESYSTEM_ROOT: registry.root };
    const ok = await promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, 'audit', 'verify'], { env });
    expect(ok.stdout).toMatch(/intact/);
    await writeJson(registry.store, key, segment);
    const bad = await promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, 'audit', 'verify'], { env }).catch((e: { stdout: string; code: number }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect(bad.stdout).toContain(`${key} record ${victim.seq} (${victim.action}`);
    const list = await promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, 'audit', 'list', '--action', 'pin'], { env });
    expect(list.stdout).toMatch(/ok +pin +admin-token from .*dr\/audited@sha256:/);
    await writeJson(registry.store, key, original);
  }, 120_000);

  it('writes never wait for the store: records are batched into segments, and close flushes', async () => {
    const log = new AuditLog(registry.store, { flushIntervalMs: 60_000, retentionMs: 86_400_000, replica: `batch-${randomBytes(4).toString('hex')}`, maxBatch: 100 });
    const started = process.hrtime.bigint();
    for (let i = 0; i < 250; i++) log.record({ action: 'tag.push', repository: 'dr/many', tag: `t${i}` });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeLessThan(50); // 250 records queued without a store round trip each
    await log.close();
    const segments: string[] = [];
    for await (const obj of registry.store.list(`audit/${log.replica}/`)) segments.push(obj.key);
    expect(segments.length).toBe(3); // 100 + 100 + 50
    expect((await verifyAudit(registry.store, { retentionMs: 86_400_000 })).ok).toBe(true);
  });
});

describe('audit trail across replicas and restarts', () => {
  it('two replicas on one store each keep their own chain; a restart keeps what was written', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'drreg-audit-'));
    const env = { DRREG_ADMIN_TOKEN: ADMIN_TOKEN, DRREG_AUDIT_FLUSHINTERVAL: '20ms' };
    const [a, b] = [await startTestRegistry({ root, env }), await startTestRegistry({ root, env })];
    for (let i = 0; i < 20; i++) (i % 2 ? a : b).registry.audit.record({ action: 'tag.push', repository: 'dr/two', tag: `t${i}` });
    await a.stop();
    await b.stop(); // shutdown flushes
    const c = await startTestRegistry({ root, env });
    const records = await listAudit(c.store, {});
    expect(records.filter((r) => r.repository === 'dr/two')).toHaveLength(20);
    expect(new Set(records.map((r) => r.replica)).size).toBe(2);
    const verified = await verifyAudit(c.store, { retentionMs: c.config.audit.retention });
    expect(verified).toMatchObject({ ok: true, chains: 2 });

    // A whole segment removed from the start of a chain is named unless it had expired.
    const log = new AuditLog(c.store, { flushIntervalMs: 60_000, retentionMs: 3_600_000, replica: 'gap-test', maxBatch: 1 });
    log.record({ action: 'pin' });
    log.record({ action: 'unpin' });
    await log.close();
    const first = (await keysUnder(c, 'audit/gap-test/')).sort()[0]!;
    await c.store.delete(first);
    const gap = await verifyAudit(c.store, { retentionMs: 3_600_000 });
    expect(gap.problems).toContainEqual(expect.objectContaining({ replica: 'gap-test', problem: expect.stringMatching(/before 1 missing, and not yet expired/) }));
    expect((await verifyAudit(c.store, { retentionMs: 3_600_000, now: Date.now() + 2 * 3_600_000 })).problems.filter((p) => p.replica === 'gap-test')).toEqual([]);
    // Expiry removes whole segments older than audit.retention.
    expect(await log.expire(Date.now() + 2 * 3_600_000)).toBeGreaterThan(0);
    await c.stop();
    await rm(root, { recursive: true, force: true });
  }, 120_000);
});

async function keysUnder(r: TestRegistry, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const obj of r.store.list(prefix)) keys.push(obj.key);
  return keys;
}

describe.each(storeFactories())('audit chain on $name', (factory) => {
  it('verify names an edited record', async () => {
    const { store, cleanup } = await factory.make();
    try {
      const log = new AuditLog(store, { flushIntervalMs: 60_000, retentionMs: 86_400_000, replica: 'chain-test', maxBatch: 2 });
      for (const action of ['tag.push', 'pin', 'unpin', 'manifest.delete']) log.record({ action, repository: 'dr/x' });
      await log.close();
      expect(await verifyAudit(store, { retentionMs: 86_400_000 })).toMatchObject({ ok: true, chains: 1, segments: 2, records: 4 });
      const key = (await listKeys(store, 'audit/chain-test/')).sort()[1]!;
      const segment = (await readJson<{ records: AuditRecord[] }>(store, key))!;
      segment.records[0]!.repository = 'dr/elsewhere';
      await writeJson(store, key, segment);
      const result = await verifyAudit(store, { retentionMs: 86_400_000 });
      expect(result.problems).toEqual([expect.objectContaining({ key, seq: 2, action: 'unpin', problem: expect.stringMatching(/record edited/) })]);
    } finally {
      await cleanup();
    }
  });
});

async function listKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const obj of store.list(prefix)) keys.push(obj.key);
  return keys;
}
