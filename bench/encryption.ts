// Push and pull throughput with and without encryption at rest, side by side in one run, on the
// same kind of store.
//   npx tsx bench/encryption.ts [--size 1GiB] [--store filesystem|s3] [--rounds 2]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize } from '../src/config/units.js';
import { newKey, saveKeyring } from '../src/crypto/keyring.js';
import { removeBucket, swiftOptions } from '../test/helpers/stores.js';
import { deterministicStream, digestOfStream, peakRssMiB, pullBlob, pushBlob, startOurs, timed } from './lib.js';

const { values } = parseArgs({
  options: { size: { type: 'string', default: '1GiB' }, store: { type: 'string', default: 'filesystem' }, rounds: { type: 'string', default: '2' } },
});
const size = parseSize(values.size!)!;
const rounds = Number(values.rounds);
const dir = await mkdtemp(path.join(tmpdir(), 'drreg-bench-enc-'));
const keyring = path.join(dir, 'keyring.yml');
await saveKeyring(keyring, { active: 'bench', keys: new Map([['bench', newKey()]]) });

function storeEnv(label: string): Record<string, string> {
  if (values.store !== 's3') return { DRREG_STORAGE_FILESYSTEM_FSYNC: 'true' };
  return {
    DRREG_STORAGE_DRIVER: 's3',
    DRREG_STORAGE_S3_ENDPOINT: 'http://127.0.0.1:8080',
    DRREG_STORAGE_S3_BUCKET: `bench-enc-${label}-${Date.now()}`,
    DRREG_STORAGE_S3_ACCESSKEY: 'test:tester',
    DRREG_STORAGE_S3_SECRETKEY: 'testing',
  };
}

const seed = `bench-enc-${size}`;
const digest = await digestOfStream(deterministicStream(size, seed));
const results: Record<string, { push: number[]; pull: number[]; rss: number }> = {};
for (const [label, extra] of [
  ['plain', {}],
  ['encrypted', { DRREG_ENCRYPTION_KEYRING: keyring }],
] as const) {
  const env: Record<string, string> = { ...storeEnv(label), ...extra };
  const reg = await startOurs(label, env);
  const r = { push: [] as number[], pull: [] as number[], rss: 0 };
  try {
    for (let i = 0; i < rounds; i++) {
      r.push.push((await timed(() => pushBlob(reg.url, `bench/enc${i}`, size, seed, digest))).seconds);
      const pull = await timed(() => pullBlob(reg.url, `bench/enc${i}`, digest));
      if (pull.value !== digest) throw new Error(`${label}: pulled ${pull.value}`);
      r.pull.push(pull.seconds);
    }
    r.rss = await peakRssMiB(reg.pid);
  } finally {
    await reg.stop();
  }
  results[label] = r;
  if (values.store === 's3') await removeBucket({ ...swiftOptions(env.DRREG_STORAGE_S3_BUCKET), endpoint: 'http://127.0.0.1:8080' });
}
await rm(dir, { recursive: true, force: true });

const mib = size / 1024 / 1024;
const best = (xs: number[]) => Math.min(...xs);
console.log(`blob ${values.size} on ${values.store}, best of ${rounds}: dr-registry without and with encryption at rest`);
console.log('mode         push MiB/s   pull MiB/s   peak RSS MiB');
for (const [label, r] of Object.entries(results)) {
  console.log(`${label.padEnd(12)} ${(mib / best(r.push)).toFixed(1).padStart(10)} ${(mib / best(r.pull)).toFixed(1).padStart(12)} ${r.rss.toFixed(0).padStart(14)}`);
}
const [plain, enc] = [results.plain!, results.encrypted!];
console.log(`encryption costs: push ${((best(enc.push) / best(plain.push) - 1) * 100).toFixed(1)}% slower, pull ${((best(enc.pull) / best(plain.pull) - 1) * 100).toFixed(1)}% slower`);
