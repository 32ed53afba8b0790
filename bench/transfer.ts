// Push, pull and fleet-failover throughput of dr-registry against CNCF Distribution 2.8, side by
// side on the same machine and store, with CPU per GiB, peak RSS and a profile of the pull path.
// Writes docs/benchmarks/transfer.md (generated).
//   npm run build && npx tsx bench/transfer.ts [--size 1GiB] [--rounds 3] [--stores filesystem,s3]
//     [--fleet-clients 16] [--fleet-size 256MiB] [--fleet-stores filesystem,s3]
//     [--uploads 100] [--upload-size 20MiB] [--profile filesystem,s3] [--before path/to/old/dist/main.js]
//     [--notes file.md] [--out docs/benchmarks/transfer.md]
// --stores s3 uses the Swift S3 endpoint (--endpoint, default http://127.0.0.1:8080).
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize } from '../src/config/units.js';
import { runTransfer, type StoreKind } from './transfer/run.js';
import { analysis, goals, writeTransferReport } from './transfer/report.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    rounds: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'filesystem,s3' },
    endpoint: { type: 'string', default: 'http://127.0.0.1:8080' },
    'fleet-clients': { type: 'string', default: '16' },
    'fleet-size': { type: 'string', default: '256MiB' },
    'fleet-stores': { type: 'string', default: 'filesystem,s3' },
    uploads: { type: 'string', default: '100' },
    'upload-size': { type: 'string', default: '20MiB' },
    'uploads-compare': { type: 'boolean', default: false },
    'profile-size': { type: 'string', default: '256MiB' },
    profile: { type: 'string', default: 'filesystem,s3' },
    before: { type: 'string' },
    notes: { type: 'string' },
    out: { type: 'string', default: 'docs/benchmarks/transfer.md' },
  },
});
const list = (s: string | undefined) => (s ? (s.split(',').filter(Boolean) as StoreKind[]) : []);
const root = path.resolve(import.meta.dirname, '..');

const results = await runTransfer({
  size: parseSize(values.size!)!,
  rounds: Number(values.rounds),
  stores: list(values.stores),
  endpoint: values.endpoint!,
  fleet: { clients: Number(values['fleet-clients']), size: parseSize(values['fleet-size']!)!, stores: list(values['fleet-stores']) },
  uploads: { clients: Number(values.uploads), size: parseSize(values['upload-size']!)!, compare: values['uploads-compare']! },
  profileStores: list(values.profile),
  profileSize: parseSize(values['profile-size']!)!,
  main: path.join(root, 'dist/main.js'),
  before: values.before,
  log: (line) => console.log(line),
});

const sh = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd: root }).trim();
  } catch {
    return 'unknown';
  }
};
const version = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')).version as string;
const command = `npx tsx bench/transfer.ts ${process.argv.slice(2).join(' ')}`.trim();
const notes = values.notes ? (await readFile(values.notes, 'utf8')).trim().split('\n') : [];
await writeTransferReport(
  results,
  {
    command,
    environment: [
      ['machine', `${os.cpus()[0]?.model.trim()}, ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, shared with other work (load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`],
      ['dr-registry', `${version} (${sh('git', ['rev-parse', '--short', 'HEAD'])})`],
      ['before (profile)', values.before ? values.before : 'not profiled'],
      ['node', process.version],
      ['CNCF Distribution', sh('dpkg-query', ['-W', '-f=${Version}', 'docker-registry'])],
      ['OpenStack Swift', sh('dpkg-query', ['-W', '-f=${Version}', 'swift'])],
    ],
    goals,
    notes: [...analysis(results), ...notes],
  },
  path.resolve(values.out!),
);
// The raw figures beside the report, to re-read or compare later.
await writeFile(path.resolve(values.out!).replace(/\.md$/, '.json'), JSON.stringify(results, null, 2));
console.log(`wrote ${values.out}`);
