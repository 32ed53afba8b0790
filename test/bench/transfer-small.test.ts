// Smoke test of the transfer benchmark (bench/transfer.ts) at a few MiB: both registries on the
// filesystem and on Swift, the fleet case, concurrent uploads and a profile of the pull, then the
// generated report. The full-size run writes docs/benchmarks/transfer.md.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analysis, goals, writeTransferReport } from '../../bench/transfer/report.js';
import { runTransfer, type TransferResults } from '../../bench/transfer/run.js';
import { SWIFT_ENDPOINT } from '../services/swift.js';

const MiB = 1024 * 1024;

describe('transfer benchmark, small scale', () => {
  let work: string;
  let results: TransferResults;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-transfer-smoke-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('measures push, pull, fleet, uploads and a profile on both registries', async () => {
    results = await runTransfer({
      size: 4 * MiB,
      rounds: 1,
      stores: ['filesystem', 's3'],
      endpoint: SWIFT_ENDPOINT,
      fleet: { clients: 3, size: MiB, stores: ['filesystem'] },
      uploads: { clients: 4, size: 6 * MiB, compare: false },
      profileStores: ['filesystem'],
      profileSize: 4 * MiB,
      main: path.resolve(import.meta.dirname, '../../src/main.ts'),
      mainNodeArgs: ['--import', 'tsx'],
    });
    expect(results.stores.map((s) => s.store)).toEqual(['filesystem', 's3']);
    for (const s of results.stores) {
      for (const side of [s.ours, s.dist]) {
        expect(side.push).toHaveLength(1);
        expect(side.pull[0]!.seconds).toBeGreaterThan(0);
        expect(side.peakRssMiB).toBeGreaterThan(5);
      }
    }
    expect(results.fleet[0]!.ours.slowestSeconds).toBeGreaterThan(0);
    expect(results.uploads!.ours.peakRssMiB).toBeGreaterThan(5);
    expect(results.profiles[0]!.summary.busyMs).toBeGreaterThan(0);
  }, 300_000);

  it('writes the report, marked as generated', async () => {
    const file = path.join(work, 'transfer.md');
    await writeTransferReport(results, { command: 'npx tsx bench/transfer.ts --size 4MiB', environment: [['machine', 'test']], goals, notes: analysis(results) }, file);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('do not edit by hand');
    expect(text).toMatch(/\| pull \| dr-registry \| [\d.]+ \|/);
    expect(text).toContain('## Fleet failover');
    expect(text).toContain('## Where the pull time goes');
    expect(text).toContain('- **pull, Swift (S3 API)**');
  });
});
