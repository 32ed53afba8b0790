// Scrub: a flipped byte in a stored layer (plain filesystem store, and encrypted) makes verify
// name the recovery points it breaks, and only those; through the admin API, the CLI over the API,
// and the CLI on the store directly.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveKeyring } from '../../src/crypto/keyring.js';
import type { VerifyReport } from '../../src/retention/verify.js';
import { runCli, waitFor } from '../helpers/cli.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { testKeyring } from '../helpers/stores.js';
import { pushPoint, type PushedImage } from './helpers.js';

const TOKEN = 'verify-admin-token-0123456789';

describe.each([
  { name: 'filesystem', encrypted: false },
  { name: 'encrypted(filesystem)', encrypted: true },
])('verify on $name', ({ encrypted }) => {
  let work: string;
  let registry: TestRegistry;
  let env: Record<string, string>;
  let first: PushedImage;
  let second: PushedImage;
  let other: PushedImage;
  const base = randomBytes(150_000);

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-verify-'));
    const root = path.join(work, 'root');
    env = { DRREG_STORAGE_FILESYSTEM_ROOT: root, DRREG_ADMIN_TOKEN: TOKEN };
    if (encrypted) {
      env.DRREG_ENCRYPTION_KEYRING = path.join(work, 'keyring.yml');
      await saveKeyring(env.DRREG_ENCRYPTION_KEYRING, testKeyring());
    }
    registry = await startTestRegistry({ root, env });
    first = await pushPoint(registry.url, 'dr/app', 'latest', base, 200_000);
    second = await pushPoint(registry.url, 'dr/app', 'latest', base, 200_000);
    other = await pushPoint(registry.url, 'dr/other', 'nightly', base, 50_000);
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const api = async (method: string, body?: unknown) => {
    const res = await fetch(`${registry.url}/admin/v1/verify`, {
      method,
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { running: boolean; startedAt?: string; lastReport?: VerifyReport } };
  };
  const runViaApi = async (scope: Record<string, string> = {}) => {
    const started = await api('POST', scope);
    expect(started.status).toBe(202);
    return waitFor(
      async () => {
        const { body } = await api('GET');
        return !body.running && body.lastReport && body.lastReport.startedAt >= started.body.startedAt! ? body.lastReport : undefined;
      },
      30_000,
      'the verify run to finish',
    );
  };

  it('finds nothing wrong in intact points', async () => {
    const report = await runViaApi();
    expect(report).toMatchObject({ repositories: 2, points: 3, damaged: [], brokenPoints: [] });
    // 3 manifests, 3 configs, 3 unique layers, 1 shared base: each read once.
    expect(report.blobsChecked).toBe(10);
    expect(report.bytesRead).toBeGreaterThan(base.length + 450_000);
  });

  it('a flipped byte in a layer breaks exactly the points that use it', async () => {
    // The unique layer of the second point: find the file that holds its bytes and flip one.
    const layer = second.blobs[2]!;
    const index = await registry.registry.blobs.read(layer);
    expect(index!.parts).toHaveLength(1);
    const file = path.join(registry.root, ...index!.parts[0]!.key.split('/'));
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(file, bytes);

    const report = await runViaApi();
    expect(report.damaged).toEqual([
      { digest: layer, problem: encrypted ? 'unreadable' : 'digest-mismatch', detail: expect.any(String) as string },
    ]);
    expect(report.brokenPoints).toEqual([
      { repository: 'dr/app', tag: 'latest', digest: second.digest, pushedAt: expect.any(String) as string, damaged: [layer] },
    ]);
    if (encrypted) expect(report.damaged[0]!.detail).toMatch(/authentic|integrity|tamper|decrypt/i);

    // The CLI through the admin API: exit 7, the broken point named, the intact ones not.
    const viaApi = await runCli(['verify', '--url', registry.url], { DRREG_ADMIN_TOKEN: TOKEN });
    expect(viaApi.code).toBe(7);
    expect(viaApi.stdout).toMatch(/^1 DAMAGED blob\(s\):$/m);
    expect(viaApi.stdout).toContain(layer);
    expect(viaApi.stdout).toMatch(new RegExp(`^dr/app\\s+latest\\s+${second.digest}\\s+\\S+\\s+1$`, 'm'));
    expect(viaApi.stdout).not.toContain(first.digest);
    expect(viaApi.stdout).not.toContain(other.digest);

    // The CLI on the store directly, scoped: the intact point of the same repository passes.
    const storeEnv = { ...env, DRREG_STORAGE_FILESYSTEM_FSYNC: 'false' };
    const intact = await runCli(['verify', 'dr/app', first.digest, '--json'], storeEnv);
    expect(intact.code).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ points: 1, damaged: [], brokenPoints: [] });
    const broken = await runCli(['verify', 'dr/app', '--json'], storeEnv);
    expect(broken.code).toBe(7);
    expect((JSON.parse(broken.stdout) as VerifyReport).brokenPoints.map((p) => p.digest)).toEqual([second.digest]);
  }, 120_000);

  it('a missing data part of the shared layer breaks every point', async () => {
    const index = await registry.registry.blobs.read(first.blobs[1]!); // the base layer
    await rm(path.join(registry.root, ...index!.parts[0]!.key.split('/')));
    const report = await runViaApi({ repository: 'dr/other' });
    expect(report.damaged).toEqual([{ digest: first.blobs[1], problem: 'missing', detail: expect.any(String) as string }]);
    expect(report.brokenPoints.map((p) => [p.repository, p.tag, p.digest])).toEqual([['dr/other', 'nightly', other.digest]]);
  });

  it('also checks pruned points that are still restorable', async () => {
    // The first point (not current) lost the shared base layer above; prune it: still restorable.
    const [point] = (await registry.registry.recoveryPoints.list('dr/app')).filter((p) => p.digest === first.digest);
    await registry.registry.recoveryPoints.prune(point!, await registry.registry.protection.lockState());
    expect((await registry.registry.recoveryPoints.listPruned('dr/app')).map((p) => p.digest)).toEqual([first.digest]);
    const report = await runViaApi({ repository: 'dr/app', digest: first.digest });
    expect(report.points).toBe(1);
    expect(report.brokenPoints).toEqual([expect.objectContaining({ repository: 'dr/app', digest: first.digest, damaged: [first.blobs[1]], pruned: true })]);
  });

  it('refuses a scope that names nothing', async () => {
    expect((await api('POST', { repository: 'no/such' })).status).toBe(404);
    expect((await api('POST', { repository: 'dr/app', digest: `sha256:${'0'.repeat(64)}` })).status).toBe(404);
    expect((await api('POST', { digest: first.digest })).status).toBe(400);
    expect((await api('POST', { repository: 'Bad Name' })).status).toBe(400);
  });
});
