// RPO monitoring: the pure computation, and a system that stops pushing turning out of RPO in the
// admin API, the metrics and `dr-registry status` within one interval.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectiveFor, summarize, systemStatus, type RpoRules } from '../../src/retention/rpo.js';
import { EXIT } from '../../src/cli/command.js';
import { runCli, waitFor } from '../helpers/cli.js';
import { startRegistryProcess, type RegistryProcess } from '../helpers/process.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, putManifest } from '../http/client.js';
import { pushPoint } from './helpers.js';

const rules: RpoRules = { maxAgeMs: 26 * 3600_000, rules: [{ repositories: 'db/*', maxAgeMs: 2 * 3600_000 }, { repositories: 'base/*', maxAgeMs: 0 }] };

describe('RPO, pure', () => {
  it('takes the first matching rule, then the default; 0 is not watched', () => {
    expect(objectiveFor('db/main', rules)).toBe(2 * 3600_000);
    expect(objectiveFor('web/app', rules)).toBe(26 * 3600_000);
    expect(objectiveFor('base/debian', rules)).toBeUndefined();
    expect(objectiveFor('x', { maxAgeMs: 0, rules: [] })).toBeUndefined();
  });

  it('judges each system by the age of its newest push at the time asked', () => {
    const now = Date.parse('2026-01-02T12:00:00Z');
    const pushed = now - 3 * 3600_000;
    expect(systemStatus({ repository: 'db/main', lastPushMs: pushed, points: 4 }, rules, now)).toEqual({
      repository: 'db/main',
      lastPushAt: '2026-01-02T09:00:00.000Z',
      lastPushAgeSeconds: 3 * 3600,
      rpoSeconds: 7200,
      withinRpo: false,
      points: 4,
    });
    expect(systemStatus({ repository: 'web/app', lastPushMs: pushed, points: 1 }, rules, now).withinRpo).toBe(true);
    expect(systemStatus({ repository: 'base/os', lastPushMs: pushed, points: 1 }, rules, now)).toMatchObject({ rpoSeconds: null, withinRpo: null });
    // A watched repository that never got a recovery point is not protected.
    expect(systemStatus({ repository: 'web/new', points: 0 }, rules, now)).toMatchObject({ lastPushAt: null, lastPushAgeSeconds: null, withinRpo: false });
    const report = summarize(
      [
        { repository: 'web/new', points: 0 },
        { repository: 'db/main', lastPushMs: pushed, points: 4 },
        { repository: 'base/os', points: 0 },
      ],
      rules,
      now,
    );
    expect(report.systems.map((s) => s.repository)).toEqual(['base/os', 'db/main', 'web/new']);
    expect(report.outOfRpo).toBe(2);
  });
});

describe('RPO monitoring of a running registry', () => {
  const TOKEN = 'rpo-admin-token-0123456789';
  const MAX_AGE_MS = 8000; // room for a loaded machine between a push and the first checks
  const REFRESH_MS = 500;
  let registry: TestRegistry;
  let replica: RegistryProcess | undefined;
  const base = Buffer.from('shared base layer');

  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_ADMIN_TOKEN: TOKEN,
        DRREG_METRICS_LISTEN: '127.0.0.1:0',
        DRREG_RPO_MAXAGE: '1h',
        DRREG_RPO_RULES: JSON.stringify([{ repositories: 'dr/db', maxAge: `${MAX_AGE_MS}ms` }, { repositories: 'base/*', maxAge: '0' }]),
        DRREG_RPO_REFRESHINTERVAL: `${REFRESH_MS}ms`,
      },
    });
  });
  afterAll(async () => {
    await replica?.stop();
    await registry?.stop();
  });

  const systems = async () => {
    const res = await fetch(`${registry.url}/admin/v1/systems`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as {
      systems: Array<{ repository: string; lastPushAt: string | null; lastPushAgeSeconds: number | null; rpoSeconds: number | null; withinRpo: boolean | null; points: number }>;
      outOfRpo: number;
    };
  };
  const system = async (name: string) => (await systems()).systems.find((s) => s.repository === name);
  const metrics = async () => (await fetch(`${registry.metricsUrl}/metrics`)).text();
  const metric = (text: string, name: string, repository?: string) => {
    const labels = repository ? `\\{repository="${repository.replace('/', '\\/')}"\\}` : '';
    const m = new RegExp(`^${name}${labels} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const env = { DRREG_URL: '', DRREG_ADMIN_TOKEN: TOKEN };

  it('a system that stops pushing turns out of RPO in the API, the metric and the CLI within one interval', async () => {
    await pushPoint(registry.url, 'dr/web', 'latest', base);
    await pushPoint(registry.url, 'base/os', 'latest', base);
    const pushed = await pushPoint(registry.url, 'dr/db', 'latest', base);
    const pushedAt = Date.now();
    // Local pushes count at once: no wait for a refresh.
    const db = await system('dr/db');
    expect(db).toMatchObject({ rpoSeconds: MAX_AGE_MS / 1000, withinRpo: true, points: 1 });
    expect(Date.parse(db!.lastPushAt!)).toBeLessThanOrEqual(pushedAt);
    expect(await system('base/os')).toMatchObject({ rpoSeconds: null, withinRpo: null });
    expect(await system('dr/web')).toMatchObject({ rpoSeconds: 3600, withinRpo: true });
    expect((await systems()).outOfRpo).toBe(0);
    const before = await metrics();
    expect(metric(before, 'drreg_rpo_systems_out_of_rpo')).toBe(0);
    expect(metric(before, 'drreg_rpo_objective_seconds', 'dr/db')).toBe(MAX_AGE_MS / 1000);
    expect(metric(before, 'drreg_rpo_last_push_age_seconds', 'dr/db')).toBeLessThanOrEqual(1);
    // dr/db stops pushing; dr/web goes on. Within maxAge plus one refresh interval, all three say so.
    const interval = MAX_AGE_MS + REFRESH_MS;
    const flipped = waitFor(async () => ((await system('dr/db'))?.withinRpo === false ? Date.now() : undefined), interval + 2000, 'dr/db out of RPO');
    // (dr/db may already be late by the time a child process answers: its table line is checked below.)
    const ok = await runCli(['status', '--url', registry.url], env);
    // 8 (EXIT.outOfRpo) exactly when the table shows a system out of RPO.
    expect(ok.code).toBe(/OUT OF RPO$/m.test(ok.stdout) ? EXIT.outOfRpo : EXIT.ok);
    expect(ok.stdout).toMatch(/^SYSTEM\s+LAST PUSH\s+AGE\s+RPO\s+POINTS\s+STATE$/m);
    expect(ok.stdout).toMatch(/^dr\/web\s+\S+\s+\S+\s+1h\s+1\s+ok$/m);
    expect(ok.stdout).toMatch(/^base\/os\s.*not watched$/m);

    const out = await flipped;
    expect(out - pushedAt).toBeGreaterThanOrEqual(MAX_AGE_MS - 1000);
    expect(out - pushedAt).toBeLessThanOrEqual(interval + 1000);
    await pushPoint(registry.url, 'dr/web', 'latest', base);
    const report = await systems();
    expect(report.outOfRpo).toBe(1);
    expect(report.systems.find((s) => s.repository === 'dr/web')).toMatchObject({ withinRpo: true, points: 2 });
    const after = await metrics();
    expect(metric(after, 'drreg_rpo_systems_out_of_rpo')).toBe(1);
    expect(metric(after, 'drreg_rpo_last_push_age_seconds', 'dr/db')).toBeGreaterThanOrEqual(MAX_AGE_MS / 1000);
    const red = await runCli(['status', '--url', registry.url], env);
    expect(red.stdout).toMatch(/^dr\/db\s.*OUT OF RPO$/m);
    expect(red.stdout).toMatch(/^1 of 2 watched system\(s\) out of RPO$/m);
    expect(red.code).toBe(EXIT.outOfRpo);
    const redJson = await runCli(['status', '--json', '--url', registry.url], env);
    expect((JSON.parse(redJson.stdout) as { outOfRpo: number }).outOfRpo).toBe(1);
    expect(redJson.code).toBe(EXIT.outOfRpo);
    expect(pushed.digest).toMatch(/^sha256:/);
  }, 120_000);

  it('counts a re-push of the same image as a push (no new point), also after a rescan', async () => {
    const image = await pushPoint(registry.url, 'dr/same', 'latest', base);
    await waitFor(async () => (((await system('dr/same'))?.lastPushAgeSeconds ?? 0) >= 2 ? true : undefined), 10_000, 'dr/same to age');
    const again = await putManifest(registry.url, 'dr/same', 'latest', image.manifest.toString(), OCI_MANIFEST);
    expect(again.res.status).toBe(201);
    expect(await system('dr/same')).toMatchObject({ lastPushAgeSeconds: 0, points: 1 });
    await registry.maintenance.rpo.refresh(); // what another replica's scan sees
    const rescanned = await system('dr/same');
    expect(rescanned!.lastPushAgeSeconds).toBeLessThanOrEqual(1);
    expect(rescanned!.points).toBe(1);
  }, 60_000);

  it('sees a push through another replica within one refresh interval', async () => {
    replica = await startRegistryProcess({ DRREG_STORAGE_FILESYSTEM_ROOT: registry.root });
    await pushPoint(replica.url, 'dr/db', 'latest', base);
    const seenAt = Date.now();
    const back = await waitFor(async () => ((await system('dr/db'))?.withinRpo === true ? Date.now() : undefined), REFRESH_MS + 3000, 'dr/db back within RPO');
    expect(back - seenAt).toBeLessThanOrEqual(REFRESH_MS + 1000);
    expect(await system('dr/db')).toMatchObject({ points: 2 });
    expect(metric(await metrics(), 'drreg_rpo_systems_out_of_rpo')).toBe(0);
  });
});

describe('RPO point counts after a prune', () => {
  const TOKEN = 'rpo-prune-admin-token-0123456789';
  let registry: TestRegistry;

  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_ADMIN_TOKEN: TOKEN,
        DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: 'dr/*', keepLast: 1 }]),
        // No rescan during the test: only the prune itself can bring the counts up to date.
        DRREG_RPO_REFRESHINTERVAL: '1h',
      },
    });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${registry.url}/admin/v1${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } });
  const pointsOf = async (repository: string) => {
    const body = (await (await admin('/systems')).json()) as { systems: Array<{ repository: string; points: number }> };
    return body.systems.find((s) => s.repository === repository)?.points;
  };

  it('a prune brings /systems point counts up to date at once', async () => {
    const base = Buffer.from('rpo prune base');
    for (let i = 0; i < 3; i++) await pushPoint(registry.url, 'dr/app', 'latest', base);
    expect(await pointsOf('dr/app')).toBe(3);
    const pruned = await admin('/prune', { method: 'POST', body: JSON.stringify({ dryRun: false }) });
    expect(pruned.status).toBe(200);
    expect(((await pruned.json()) as { droppedPoints: number }).droppedPoints).toBe(2);
    expect(await pointsOf('dr/app')).toBe(1);
  });
});
